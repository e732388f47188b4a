"""The project's S3 buckets: private, encrypted, tagged (created when missing)."""

from __future__ import annotations

from typing import Any

from clickstream.deploy.actions import Executor
from clickstream.deploy.config import DeploySettings, tags


def ensure_bucket(ex: Executor, s: DeploySettings, bucket: str) -> None:
    found = ex.exists("s3", "head_bucket", ("404", "NoSuchBucket", "NotFound"), Bucket=bucket)
    if found is None:
        params: dict[str, Any] = {"Bucket": bucket}
        if s.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": s.region}
        ex.change("s3", "create_bucket", **params)
    # Settings are (re)applied every time: cheap, and an existing bucket ends up private too.
    ex.change(
        "s3",
        "put_public_access_block",
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    ex.change(
        "s3",
        "put_bucket_encryption",
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    ex.change(
        "s3",
        "put_bucket_tagging",
        Bucket=bucket,
        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags(s).items()]},
    )
    ex.record(
        f"s3://{bucket}", created=found is None, detail="private, SSE-S3, public access blocked"
    )
