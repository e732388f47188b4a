"""One-command deployment: buckets, job artifact, least-privilege IAM, Glue/Athena, an EMR run.

Every step checks what exists first and creates only what is missing, so running ``deploy``
twice creates nothing the second time. The cluster runs the Spark ETL as a step and terminates
itself when the step ends, on failure too (and after ``idle_timeout_seconds`` as a backstop).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from clickstream import s3
from clickstream.contract.schema import OUTPUT_COLUMNS, PARTITION_COLUMNS, REJECTED_COLUMNS
from clickstream.deploy.actions import Executor
from clickstream.deploy.config import FALLBACK_RELEASE, DeploySettings
from clickstream.errors import ConfigError
from clickstream.lake.layout import REJECTED_TABLE, TABLE
from clickstream.query.ddl import athena_views, hive_type, projection_properties
from clickstream.query.views import VIEW_NAMES

EMR_SERVICE_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"
ACTIVE_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"]
PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    },
}


def names(s: DeploySettings) -> dict[str, str]:
    return {
        "service_role": f"{s.project}-emr-service",
        "instance_role": f"{s.project}-emr-ec2",
        "instance_profile": f"{s.project}-emr-ec2",
        "cluster": f"{s.project}-etl",
        "job_prefix": "jobs",
    }


def _tags(s: DeploySettings) -> dict[str, str]:
    return {"project": s.project, **s.tags}


# -- buckets ------------------------------------------------------------------------------------
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
        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in _tags(s).items()]},
    )
    ex.record(
        f"s3://{bucket}", created=found is None, detail="private, SSE-S3, public access blocked"
    )


#: EMR 7 nodes run Python 3.9; the job needs 3.11 (in the AL2023 repositories) and boto3.
BOOTSTRAP = """#!/bin/bash
set -euo pipefail
sudo dnf install -y -q python3.11 python3.11-pip
sudo python3.11 -m pip install --quiet "boto3>=1.34"
"""


def upload_job(ex: Executor, s: DeploySettings) -> tuple[str, str, str]:
    """Upload the Spark job artifact and node bootstrap (skipped when already there)."""
    from clickstream.deploy.package import build_spark_artifact

    uris = []
    with tempfile.TemporaryDirectory() as tmp:
        bootstrap = Path(tmp) / "bootstrap.sh"
        bootstrap.write_text(BOOTSTRAP)
        for path in (*build_spark_artifact(Path(tmp)), bootstrap):
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()[:16]
            key = f"{names(s)['job_prefix']}/{digest}/{path.name}"
            found = (
                ex.exists(
                    "s3",
                    "head_object",
                    ("404", "NoSuchKey", "NotFound"),
                    Bucket=s.code_bucket,
                    Key=key,
                )
                if not ex.dry_run
                else None
            )
            if found is None:
                ex.change("s3", "put_object", Bucket=s.code_bucket, Key=key, Body=data)
            uri = f"s3://{s.code_bucket}/{key}"
            ex.record(uri, created=found is None, detail="Spark job")
            uris.append(uri)
    return uris[0], uris[1], uris[2]


# -- IAM ----------------------------------------------------------------------------------------
def _trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def instance_policy(s: DeploySettings) -> dict[str, Any]:
    """What the cluster's nodes may do: read the input and the job, write logs and the lake."""
    in_bucket, in_prefix = s3.split(s.input)
    lake_prefix = s.lake_prefix.strip("/")
    arn = "arn:aws:s3:::"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListProjectBuckets",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": sorted(
                    {f"{arn}{in_bucket}", f"{arn}{s.code_bucket}", f"{arn}{s.lake_bucket}"}
                ),
            },
            {
                "Sid": "ReadInput",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"{arn}{in_bucket}/{in_prefix}*"],
            },
            {
                "Sid": "ReadJob",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"{arn}{s.code_bucket}/{names(s)['job_prefix']}/*"],
            },
            {
                "Sid": "WriteLogs",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [f"{arn}{s.code_bucket}/emr-logs/*"],
            },
            {
                "Sid": "ReadWriteLake",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [f"{arn}{s.lake_bucket}/{lake_prefix}/*"],
            },
        ],
    }


def _ensure_role(ex: Executor, s: DeploySettings, name: str, service: str) -> bool:
    found = ex.exists("iam", "get_role", ("NoSuchEntity",), RoleName=name)
    if found is None:
        ex.change(
            "iam",
            "create_role",
            RoleName=name,
            AssumeRolePolicyDocument=_trust(service),
            Tags=[{"Key": k, "Value": v} for k, v in _tags(s).items()],
        )
    return found is None


def ensure_iam(ex: Executor, s: DeploySettings) -> None:
    n = names(s)
    created = _ensure_role(ex, s, n["service_role"], "elasticmapreduce.amazonaws.com")
    ex.change("iam", "attach_role_policy", RoleName=n["service_role"], PolicyArn=EMR_SERVICE_POLICY)
    ex.record(
        f"iam role {n['service_role']}", created, "EMR service role (AmazonEMRServicePolicy_v2)"
    )
    created = _ensure_role(ex, s, n["instance_role"], "ec2.amazonaws.com")
    ex.change(
        "iam",
        "put_role_policy",
        RoleName=n["instance_role"],
        PolicyName="lake-access",
        PolicyDocument=json.dumps(instance_policy(s)),
    )
    ex.record(f"iam role {n['instance_role']}", created, "cluster nodes: project buckets only")
    profile = ex.exists(
        "iam", "get_instance_profile", ("NoSuchEntity",), InstanceProfileName=n["instance_profile"]
    )
    if profile is None:
        ex.change("iam", "create_instance_profile", InstanceProfileName=n["instance_profile"])
    roles = [r["RoleName"] for r in (profile or {}).get("InstanceProfile", {}).get("Roles", [])]
    if n["instance_role"] not in roles:
        ex.change(
            "iam",
            "add_role_to_instance_profile",
            InstanceProfileName=n["instance_profile"],
            RoleName=n["instance_role"],
        )
    ex.record(f"iam instance profile {n['instance_profile']}", profile is None)


# -- Glue / Athena ------------------------------------------------------------------------------
def _table_input(
    s: DeploySettings, name: str, columns: tuple[Any, ...], partitioned: bool
) -> dict[str, Any]:
    location = f"{s.lake_uri()}/{name}/"
    params = {"EXTERNAL": "TRUE", "classification": "parquet"}
    if partitioned:
        params.update(projection_properties(location))
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": params,
        "PartitionKeys": [{"Name": c.name, "Type": hive_type(c)} for c in PARTITION_COLUMNS]
        if partitioned
        else [],
        "StorageDescriptor": {
            "Columns": [
                {"Name": c.name, "Type": hive_type(c), "Comment": c.doc[:255]} for c in columns
            ],
            "Location": location,
            **PARQUET,
        },
    }


def ensure_glue(ex: Executor, s: DeploySettings) -> None:
    db = ex.exists("glue", "get_database", ("EntityNotFoundException",), Name=s.glue_database)
    if db is None:
        ex.change(
            "glue",
            "create_database",
            DatabaseInput={
                "Name": s.glue_database,
                "Description": "clickstream lake (managed by clickstream)",
            },
        )
    ex.record(f"glue database {s.glue_database}", db is None)
    for name, columns, partitioned in (
        (TABLE, OUTPUT_COLUMNS, True),
        (REJECTED_TABLE, REJECTED_COLUMNS, False),
    ):
        table = _table_input(s, name, columns, partitioned)
        found = (
            None
            if db is None
            else ex.exists(
                "glue",
                "get_table",
                ("EntityNotFoundException",),
                DatabaseName=s.glue_database,
                Name=name,
            )
        )
        op = "create_table" if found is None else "update_table"
        ex.change("glue", op, DatabaseName=s.glue_database, TableInput=table)
        ex.record(
            f"glue table {s.glue_database}.{name}",
            found is None,
            "partition projection" if partitioned else "",
        )
    # Views are SQL objects: Athena creates them (CREATE OR REPLACE, so re-running is harmless).
    for name, statement in zip(VIEW_NAMES, athena_views(), strict=True):
        ex.change(
            "athena",
            "start_query_execution",
            QueryString=statement,
            QueryExecutionContext={"Database": s.glue_database},
            ResultConfiguration={"OutputLocation": f"s3://{s.code_bucket}/athena-results/"},
        )
        ex.record(
            f"athena view {s.glue_database}.{name}", created=False, detail="create or replace"
        )


# -- EMR ----------------------------------------------------------------------------------------
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
    found = ex.read("emr", "list_clusters", ClusterStates=ACTIVE_STATES).get("Clusters", [])
    return [c for c in found if c["Name"] == names(s)["cluster"]]


def step_args(s: DeploySettings, job_zip: str, launcher: str) -> list[str]:
    return [
        "spark-submit",
        "--deploy-mode",
        "client",
        "--py-files",
        job_zip,
        launcher,
        "--input",
        s.input,
        "--lake",
        s.lake_uri(),
    ]


def ensure_cluster(
    ex: Executor, s: DeploySettings, job_zip: str, launcher: str, bootstrap: str
) -> str | None:
    running = active_clusters(ex, s)
    if running:
        ex.record(f"emr cluster {running[0]['Id']}", False, running[0]["Status"]["State"])
        return str(running[0]["Id"])
    release = s.release_label or newest_release(ex)
    n = names(s)
    response = ex.change(
        "emr",
        "run_job_flow",
        Name=n["cluster"],
        ReleaseLabel=release,
        Applications=[{"Name": "Spark"}],
        LogUri=f"s3://{s.code_bucket}/emr-logs/",
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
            {"Name": "python3.11", "ScriptBootstrapAction": {"Path": bootstrap, "Args": []}}
        ],
        Configurations=[
            {
                "Classification": "spark-defaults",
                "Properties": {"spark.sql.session.timeZone": "UTC"},
            },
            {
                "Classification": "spark-env",
                "Configurations": [
                    {
                        "Classification": "export",
                        "Properties": {
                            "PYSPARK_PYTHON": "/usr/bin/python3.11",
                            "PYSPARK_DRIVER_PYTHON": "/usr/bin/python3.11",
                        },
                    }
                ],
            },
        ],
        VisibleToAllUsers=True,
        Tags=[{"Key": k, "Value": v} for k, v in _tags(s).items()],
    )
    cluster_id = response["JobFlowId"] if response else None
    ex.record(f"emr cluster {cluster_id or n['cluster']}", True, f"{release}, runs the ETL step")
    return cluster_id


def deploy(ex: Executor, s: DeploySettings) -> str | None:
    if not s.input:
        raise ConfigError(
            "deploy needs the raw input: --input s3://bucket/prefix/ "
            "(or [deploy] input in clickstream.toml)"
        )
    ensure_bucket(ex, s, s.code_bucket)
    ensure_bucket(ex, s, s.lake_bucket)
    job_zip, launcher, bootstrap = upload_job(ex, s)
    ensure_iam(ex, s)
    ensure_glue(ex, s)
    return ensure_cluster(ex, s, job_zip, launcher, bootstrap)
