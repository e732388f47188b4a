"""Removing what deploy created, in an order AWS accepts, whatever state a deploy left.

Clusters are terminated and *waited for* first (a running cluster still writes logs and holds
its roles); every list call is paginated; anything already gone (a deploy interrupted halfway)
is skipped, not an error. A bucket is emptied and deleted only when it carries deploy's
``CREATED_BY_TAG``; in a bucket the user supplied, only what the deploy manifest lists goes
(``manifest.py``), and the Glue catalog loses only the project's own tables (``glue.py``).
"""

from __future__ import annotations

from dataclasses import replace

from clickstream.deploy.actions import Executor, Outcome
from clickstream.deploy.buckets import MISSING_BUCKET, created_by_deploy
from clickstream.deploy.config import RUNTIMES, DeploySettings, names
from clickstream.deploy.emr import active_clusters
from clickstream.deploy.glue import remove_glue
from clickstream.deploy.kinesis import remove_stream
from clickstream.deploy.manifest import Manifest, load, manifest_key
from clickstream.deploy.schedule import remove_schedule
from clickstream.deploy.serverless import remove_application
from clickstream.errors import DeployError

#: Bounded wait for clusters to terminate: 15 s polls, 30 minutes at most.
TERMINATE_WAIT = {"Delay": 15, "MaxAttempts": 120}
GONE = ("NoSuchEntity",)


def _delete_versions(ex: Executor, bucket: str, prefix: str = "", exact: bool = False) -> int:
    """Every version (and delete marker) under ``prefix``; of that one key when ``exact``."""
    versions = ex.pages("s3", "list_object_versions", "Versions", Bucket=bucket, Prefix=prefix)
    markers = ex.pages("s3", "list_object_versions", "DeleteMarkers", Bucket=bucket, Prefix=prefix)
    objects = [
        {"Key": o["Key"], "VersionId": o["VersionId"]}
        for o in versions + markers
        if not exact or o["Key"] == prefix
    ]
    for i in range(0, len(objects), 1000):
        ex.change(
            "s3",
            "delete_objects",
            Bucket=bucket,
            Delete={"Objects": objects[i : i + 1000], "Quiet": True},
        )
    return len(objects)


def _remove_bucket(
    ex: Executor, s: DeploySettings, bucket: str, manifest: Manifest | None, whole: bool
) -> None:
    """Delete a bucket deploy created (when ``whole``); otherwise, with a ``manifest``, only the
    keys and prefixes it records, and the manifest itself."""
    found = ex.exists("s3", "head_bucket", MISSING_BUCKET, Bucket=bucket)
    if found is None:
        ex.record_deleted(f"s3://{bucket}", False)
        return
    ours = created_by_deploy(ex, s, bucket)
    if ours and whole:
        _delete_versions(ex, bucket)
        ex.change("s3", "delete_bucket", Bucket=bucket, gone=("NoSuchBucket",))
        ex.record_deleted(f"s3://{bucket}", True)
        return
    if manifest is None:
        ex.outcomes.append(Outcome(f"s3://{bucket}", "kept", "not created by deploy"))
        return
    removed = sum(_delete_versions(ex, bucket, key, exact=True) for key in manifest.keys)
    removed += sum(_delete_versions(ex, bucket, prefix) for prefix in manifest.prefixes)
    removed += _delete_versions(ex, bucket, manifest_key(s), exact=True)
    why = "holds the lake (use --delete-data)" if ours else "not created by deploy"
    ex.outcomes.append(
        Outcome(
            f"s3://{bucket}",
            "kept",
            f"{why}: only the {removed} object version(s) its deploy manifest lists removed",
        )
    )


def _terminate_clusters(ex: Executor, s: DeploySettings) -> None:
    from botocore.exceptions import WaiterError

    clusters = active_clusters(ex, s)
    ids = [c["Id"] for c in clusters]
    for i in range(0, len(ids), 10):
        ex.change("emr", "terminate_job_flows", JobFlowIds=ids[i : i + 10])
    if ids and not ex.dry_run:
        waiter = ex.client("emr").get_waiter("cluster_terminated")
        for cluster_id in ids:
            try:
                waiter.wait(ClusterId=cluster_id, WaiterConfig=TERMINATE_WAIT)
            except WaiterError as err:
                state = (err.last_response or {}).get("Cluster", {}).get("Status", {})
                if state.get("State") != "TERMINATED_WITH_ERRORS":
                    raise DeployError(
                        f"emr cluster {cluster_id} did not terminate "
                        f"({state.get('State', 'unknown state')}); run teardown again later"
                    ) from err
    ex.record_deleted(f"emr clusters {names(s)['cluster']}", bool(ids), ", ".join(ids))


def remove_role(ex: Executor, role: str) -> None:
    """Detach and delete everything hanging on a role, then the role (all of it may be gone)."""
    found = ex.exists("iam", "get_role", GONE, RoleName=role)
    if found is not None:
        for name in ex.pages("iam", "list_role_policies", "PolicyNames", RoleName=role):
            ex.change("iam", "delete_role_policy", gone=GONE, RoleName=role, PolicyName=name)
        for policy in ex.pages(
            "iam", "list_attached_role_policies", "AttachedPolicies", RoleName=role
        ):
            ex.change(
                "iam", "detach_role_policy", gone=GONE, RoleName=role, PolicyArn=policy["PolicyArn"]
            )
        for profile in ex.pages(
            "iam", "list_instance_profiles_for_role", "InstanceProfiles", RoleName=role
        ):
            ex.change(
                "iam",
                "remove_role_from_instance_profile",
                gone=GONE,
                InstanceProfileName=profile["InstanceProfileName"],
                RoleName=role,
            )
        ex.change("iam", "delete_role", gone=GONE, RoleName=role)
    ex.record_deleted(f"iam role {role}", found is not None)


def teardown(ex: Executor, s: DeploySettings, delete_data: bool) -> None:
    """Both runtimes' resources go, whichever ``runtime`` is set now (it may have changed)."""
    ec2 = replace(s, runtime="emr-ec2")
    n = names(ec2)
    # First: a damaged manifest stops teardown before anything is removed.
    manifest = load(ex, s)
    remove_schedule(ex, s)  # first: no new run may start while the rest goes
    _terminate_clusters(ex, s)
    remove_application(ex, s)
    remove_glue(ex, s, manifest)
    for runtime in RUNTIMES:
        remove_stream(ex, replace(s, runtime=runtime))
    profile = ex.exists(
        "iam", "get_instance_profile", GONE, InstanceProfileName=n["instance_profile"]
    )
    if profile is not None:
        for role in profile["InstanceProfile"].get("Roles", []):
            ex.change(
                "iam",
                "remove_role_from_instance_profile",
                gone=GONE,
                InstanceProfileName=n["instance_profile"],
                RoleName=role["RoleName"],
            )
        ex.change(
            "iam", "delete_instance_profile", gone=GONE, InstanceProfileName=n["instance_profile"]
        )
    ex.record_deleted(f"iam instance profile {n['instance_profile']}", profile is not None)
    serverless_role = names(replace(s, runtime="emr-serverless"))["instance_role"]
    for role in (n["instance_role"], n["service_role"], serverless_role):
        remove_role(ex, role)
    # A code bucket that is also the lake bucket goes whole only with --delete-data.
    shared = s.code_bucket == s.lake_bucket
    _remove_bucket(ex, s, s.code_bucket, manifest, whole=delete_data or not shared)
    if delete_data and not shared:
        _remove_bucket(ex, s, s.lake_bucket, None, whole=True)
    elif not delete_data:
        ex.outcomes.append(
            Outcome(f"s3://{s.lake_bucket}", "kept", "data (use --delete-data to remove)")
        )
