"""The project's S3 buckets: private, encrypted, tagged when deploy creates them.

A bucket the user already has is theirs: deploy changes nothing on it unless
``configure_existing_buckets`` is set, and then only merges tags and adds default encryption
when it has none (an SSE-KMS default stays). Buckets deploy creates carry ``CREATED_BY_TAG``;
teardown empties and deletes only those.
"""

from __future__ import annotations

from typing import Any

from clickstream.deploy.actions import Executor
from clickstream.deploy.config import CREATED_BY_TAG, DeploySettings, tags

MISSING_BUCKET = ("404", "NoSuchBucket", "NotFound")
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
SSE_S3 = {
    "Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}
    ]
}


def bucket_tags(ex: Executor, bucket: str) -> dict[str, str]:
    found = ex.exists("s3", "get_bucket_tagging", ("NoSuchTagSet",), Bucket=bucket)
    return {t["Key"]: t["Value"] for t in (found or {}).get("TagSet", [])}


def created_by_deploy(ex: Executor, s: DeploySettings, bucket: str) -> bool:
    return bucket_tags(ex, bucket).get(CREATED_BY_TAG) == s.project


def _has_encryption(ex: Executor, bucket: str) -> bool:
    found = ex.exists(
        "s3",
        "get_bucket_encryption",
        ("ServerSideEncryptionConfigurationNotFoundError",),
        Bucket=bucket,
    )
    return bool((found or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules"))


def ensure_bucket(ex: Executor, s: DeploySettings, bucket: str) -> None:
    found = ex.exists("s3", "head_bucket", MISSING_BUCKET, Bucket=bucket)
    if found is None:
        params: dict[str, Any] = {"Bucket": bucket}
        if s.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": s.region}
        ex.change("s3", "create_bucket", **params)
        ours = True
        current: dict[str, str] = {}
    else:
        current = bucket_tags(ex, bucket)
        ours = current.get(CREATED_BY_TAG) == s.project
    if not ours and not s.configure_existing_buckets:
        ex.record(f"s3://{bucket}", False, "not created by deploy: left as it is")
        return
    if ours:
        ex.change(
            "s3",
            "put_public_access_block",
            Bucket=bucket,
            PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK,
        )
    # Never replace a default encryption the owner chose (SSE-KMS stays SSE-KMS).
    if found is None or not _has_encryption(ex, bucket):
        ex.change(
            "s3", "put_bucket_encryption", Bucket=bucket, ServerSideEncryptionConfiguration=SSE_S3
        )
    # PutBucketTagging replaces the whole set: merge, so the owner's tags survive.
    wanted = {**current, **tags(s)}
    if ours:
        wanted[CREATED_BY_TAG] = s.project
    if wanted != current:
        ex.change(
            "s3",
            "put_bucket_tagging",
            Bucket=bucket,
            Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in wanted.items()]},
        )
    detail = "private, encrypted, public access blocked" if ours else "tags merged, encryption kept"
    ex.record(f"s3://{bucket}", created=found is None, detail=detail)
