"""The EMR cluster that runs the ETL step and ends itself, and its status."""

from __future__ import annotations

import time
from typing import Any

from clickstream.deploy.actions import Executor
from clickstream.deploy.config import (
    EMR_MANAGED_TAG,
    FALLBACK_RELEASE,
    DeploySettings,
    names,
    tags,
)
from clickstream.engines.base import SPARK_JIT_FLAG
from clickstream.errors import ConfigError, DeployError

ACTIVE_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"]
#: The step's Spark settings. EMR keeps its own JVM options (GC, OnOutOfMemoryError) in
#: ``spark.{driver,executor}.defaultJavaOptions``, which Spark puts before these: both apply.
STEP_CONF = {
    "spark.driver.extraJavaOptions": SPARK_JIT_FLAG,
    "spark.executor.extraJavaOptions": SPARK_JIT_FLAG,
}
#: Seconds between RunJobFlow retries while a new instance profile propagates through IAM
#: (bounded: about a minute in all, then the error is reported).
IAM_PROPAGATION_DELAYS = (2, 4, 8, 16, 30)


def cluster_tags(s: DeploySettings) -> list[dict[str, str]]:
    """The project's tags plus the one AmazonEMRServicePolicy_v2 requires to launch instances."""
    key, value = EMR_MANAGED_TAG
    return [{"Key": k, "Value": v} for k, v in {**tags(s), key: value}.items()]


def check_network_tags(ex: Executor, s: DeploySettings) -> None:
    """The configured subnet and security groups must carry the managed-policy tag, else EMR's
    RunInstances is denied minutes later; say so now, in one line."""
    key, value = EMR_MANAGED_TAG
    wanted = f"{key}={value}"
    if s.subnet_id:
        [subnet] = ex.read("ec2", "describe_subnets", SubnetIds=[s.subnet_id])["Subnets"]
        if {t["Key"]: t["Value"] for t in subnet.get("Tags", [])}.get(key) != value:
            raise ConfigError(f"subnet {s.subnet_id} lacks the tag {wanted} (EMR needs it)")
    groups = sorted({g for g in (s.master_security_group, s.core_security_group) if g})
    if groups:
        if not s.subnet_id:
            raise ConfigError("security groups need subnet_id (groups belong to its VPC)")
        found = ex.read("ec2", "describe_security_groups", GroupIds=groups)["SecurityGroups"]
        for group in found:
            if {t["Key"]: t["Value"] for t in group.get("Tags", [])}.get(key) != value:
                raise ConfigError(
                    f"security group {group['GroupId']} lacks the tag {wanted} (EMR needs it)"
                )


def network(s: DeploySettings) -> dict[str, str]:
    params = {}
    if s.subnet_id:
        params["Ec2SubnetId"] = s.subnet_id
    if s.master_security_group:
        params["EmrManagedMasterSecurityGroup"] = s.master_security_group
    if s.core_security_group:
        params["EmrManagedSlaveSecurityGroup"] = s.core_security_group
    return params


def run_job_flow(ex: Executor, params: dict[str, Any]) -> Any:
    """RunJobFlow, retried (bounded) while IAM has not yet propagated the instance profile."""
    for delay in (*IAM_PROPAGATION_DELAYS, None):
        try:
            return ex.change("emr", "run_job_flow", **params)
        except DeployError as err:
            if delay is None or "Invalid InstanceProfile" not in str(err):
                raise
            time.sleep(delay)
    return None


def newest_release(ex: Executor) -> str:
    try:
        labels = ex.read("emr", "list_release_labels", Filters={"Prefix": "emr-7"})
    except Exception:  # noqa: BLE001 (API unavailable in the region/endpoint: use the fallback)
        return FALLBACK_RELEASE
    versions = [lbl for lbl in labels.get("ReleaseLabels", []) if lbl.startswith("emr-7.")]

    def key(label: str) -> tuple[int, ...]:
        return tuple(int(p) for p in label.removeprefix("emr-").split(".") if p.isdigit())

    return max(versions, key=key) if versions else FALLBACK_RELEASE


def active_clusters(ex: Executor, s: DeploySettings) -> list[dict[str, Any]]:
    # Every page: a busy account has more than the 50 clusters one page holds.
    found = ex.pages("emr", "list_clusters", "Clusters", ClusterStates=ACTIVE_STATES)
    return [c for c in found if c["Name"] == names(s)["cluster"]]


def step_args(s: DeploySettings, job_zip: str, launcher: str) -> list[str]:
    return [
        "spark-submit",
        "--deploy-mode",
        "client",
        *(arg for k, v in STEP_CONF.items() for arg in ("--conf", f"{k}={v}")),
        "--py-files",
        job_zip,
        launcher,
        "--input",
        s.input,
        "--lake",
        s.lake_uri(),
    ]


def job_flow_params(
    ex: Executor, s: DeploySettings, job_zip: str, launcher: str, bootstrap: str
) -> dict[str, Any]:
    """RunJobFlow's parameters: deploy uses them now and the schedule (emr-ec2) on every tick."""
    release = s.release_label or newest_release(ex)
    n = names(s)
    return dict(
        Name=n["cluster"],
        ReleaseLabel=release,
        Applications=[{"Name": "Spark"}],
        LogUri=f"s3://{s.code_bucket}/{n['log_prefix']}",
        ServiceRole=n["service_role"],
        JobFlowRole=n["instance_profile"],
        Instances={
            "InstanceGroups": [
                {
                    "Name": "primary",
                    "InstanceRole": "MASTER",
                    "InstanceCount": 1,
                    "InstanceType": s.master_instance_type,
                },
                {
                    "Name": "core",
                    "InstanceRole": "CORE",
                    "InstanceCount": s.core_instance_count,
                    "InstanceType": s.core_instance_type,
                },
            ],
            # No steps left -> the cluster shuts down; nobody has to visit the console.
            "KeepJobFlowAliveWhenNoSteps": False,
            "TerminationProtected": False,
            **network(s),
        },
        Steps=[
            {
                "Name": "clickstream-etl",
                "ActionOnFailure": "TERMINATE_CLUSTER",
                "HadoopJarStep": {
                    "Jar": "command-runner.jar",
                    "Args": step_args(s, job_zip, launcher),
                },
            }
        ],
        AutoTerminationPolicy={"IdleTimeout": s.idle_timeout_seconds},
        BootstrapActions=[
            {"Name": "boto3", "ScriptBootstrapAction": {"Path": bootstrap, "Args": []}}
        ],
        # The image's own python3 (3.9 on EMR 7) runs the job: no other interpreter installed.
        Configurations=[
            {
                "Classification": "spark-defaults",
                "Properties": {"spark.sql.session.timeZone": "UTC"},
            },
        ],
        VisibleToAllUsers=True,
        Tags=cluster_tags(s),
    )


def ensure_cluster(
    ex: Executor, s: DeploySettings, job_zip: str, launcher: str, bootstrap: str
) -> tuple[str | None, dict[str, Any]]:
    """The project's active cluster, else a new one running the ETL step. Returns its id and
    the RunJobFlow parameters (for the schedule)."""
    params = job_flow_params(ex, s, job_zip, launcher, bootstrap)
    running = active_clusters(ex, s)
    if running:
        ex.record(f"emr cluster {running[0]['Id']}", False, running[0]["Status"]["State"])
        return str(running[0]["Id"]), params
    response = run_job_flow(ex, params)
    cluster_id = response["JobFlowId"] if response else None
    ex.record(
        f"emr cluster {cluster_id or params['Name']}",
        True,
        f"{params['ReleaseLabel']}, runs the ETL step",
    )
    return cluster_id, params


def cluster_status(ex: Executor, s: DeploySettings, cluster_id: str | None) -> dict[str, Any]:
    """The cluster (given, else the project's newest), its steps and where their logs are."""
    if cluster_id is None:
        clusters = [
            c
            for c in ex.pages("emr", "list_clusters", "Clusters")
            if c["Name"] == names(s)["cluster"]
        ]
        if not clusters:
            return {}
        clusters.sort(
            key=lambda c: c["Status"]["Timeline"].get("CreationDateTime", 0), reverse=True
        )
        cluster_id = clusters[0]["Id"]
    cluster = ex.read("emr", "describe_cluster", ClusterId=cluster_id)["Cluster"]
    steps = ex.pages("emr", "list_steps", "Steps", ClusterId=cluster_id)
    log_uri = (cluster.get("LogUri") or "").replace("s3n://", "s3://")
    return {
        "id": cluster_id,
        "state": cluster["Status"]["State"],
        "reason": cluster["Status"].get("StateChangeReason", {}).get("Message", ""),
        "release": cluster.get("ReleaseLabel", ""),
        "logs": f"{log_uri.rstrip('/')}/{cluster_id}/" if log_uri else "",
        "steps": [
            {
                "id": st["Id"],
                "name": st["Name"],
                "state": st["Status"]["State"],
                "logs": f"{log_uri.rstrip('/')}/{cluster_id}/steps/{st['Id']}/" if log_uri else "",
            }
            for st in steps
        ],
    }
