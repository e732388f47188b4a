"""Removing what deploy created (data buckets only when asked)."""

from __future__ import annotations

from clickstream.deploy.actions import Executor
from clickstream.deploy.config import DeploySettings, names
from clickstream.deploy.emr import active_clusters
from clickstream.deploy.iam import EMR_SERVICE_POLICY
from clickstream.deploy.kinesis import remove_stream
from clickstream.lake.layout import REJECTED_TABLE, TABLE
from clickstream.query.views import VIEW_NAMES


def _empty_and_delete_bucket(ex: Executor, bucket: str) -> None:
    found = ex.exists("s3", "head_bucket", ("404", "NoSuchBucket", "NotFound"), Bucket=bucket)
    if found is not None:
        pages = ex.client("s3").get_paginator("list_object_versions").paginate(Bucket=bucket)
        for page in pages:
            objects = [
                {"Key": o["Key"], "VersionId": o["VersionId"]}
                for o in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for i in range(0, len(objects), 1000):
                ex.change(
                    "s3",
                    "delete_objects",
                    Bucket=bucket,
                    Delete={"Objects": objects[i : i + 1000], "Quiet": True},
                )
        ex.change("s3", "delete_bucket", Bucket=bucket)
    ex.record_deleted(f"s3://{bucket}", found is not None)


def teardown(ex: Executor, s: DeploySettings, delete_data: bool) -> None:
    n = names(s)
    clusters = active_clusters(ex, s)
    if clusters:
        ex.change("emr", "terminate_job_flows", JobFlowIds=[c["Id"] for c in clusters])
    ex.record_deleted(
        f"emr clusters {n['cluster']}", bool(clusters), ", ".join(c["Id"] for c in clusters)
    )
    db = ex.exists("glue", "get_database", ("EntityNotFoundException",), Name=s.glue_database)
    if db is not None:
        for table in (TABLE, REJECTED_TABLE, *VIEW_NAMES):
            if (
                ex.exists(
                    "glue",
                    "get_table",
                    ("EntityNotFoundException",),
                    DatabaseName=s.glue_database,
                    Name=table,
                )
                is not None
            ):
                ex.change("glue", "delete_table", DatabaseName=s.glue_database, Name=table)
        ex.change("glue", "delete_database", Name=s.glue_database)
    ex.record_deleted(f"glue database {s.glue_database}", db is not None)
    remove_stream(ex, s)
    profile = ex.exists(
        "iam", "get_instance_profile", ("NoSuchEntity",), InstanceProfileName=n["instance_profile"]
    )
    if profile is not None:
        for role in profile["InstanceProfile"].get("Roles", []):
            ex.change(
                "iam",
                "remove_role_from_instance_profile",
                InstanceProfileName=n["instance_profile"],
                RoleName=role["RoleName"],
            )
        ex.change("iam", "delete_instance_profile", InstanceProfileName=n["instance_profile"])
    ex.record_deleted(f"iam instance profile {n['instance_profile']}", profile is not None)
    for role, inline, managed in (
        (n["instance_role"], "lake-access", None),
        (n["service_role"], None, EMR_SERVICE_POLICY),
    ):
        found = ex.exists("iam", "get_role", ("NoSuchEntity",), RoleName=role)
        if found is not None:
            if inline:
                ex.change("iam", "delete_role_policy", RoleName=role, PolicyName=inline)
            if managed:
                ex.change("iam", "detach_role_policy", RoleName=role, PolicyArn=managed)
            ex.change("iam", "delete_role", RoleName=role)
        ex.record_deleted(f"iam role {role}", found is not None)
    _empty_and_delete_bucket(ex, s.code_bucket)
    if delete_data:
        _empty_and_delete_bucket(ex, s.lake_bucket)
    else:
        ex.outcomes.append(
            type(ex.outcomes[0])(
                f"s3://{s.lake_bucket}", "kept", "data (use --delete-data to remove)"
            )
        )
