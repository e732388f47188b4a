"""Deploy/teardown against the account as it really is: no region configured, a busy account,
half-finished deploys, buckets the user owns, an Athena view that fails (moto server; Athena's
verdict through a botocore Stubber, the one boundary moto cannot play: it runs no SQL)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.aws.test_deploy import cli, every, no_secrets, state

pytestmark = pytest.mark.aws

KMS = {
    "Rules": [
        {
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/user-key",
            }
        }
    ]
}


def _raw(aws, name: str) -> str:
    raw = f"{name}-raw"
    aws.create_bucket(Bucket=raw)
    aws.put_object(Bucket=raw, Key="clicks/a.csv", Body=b"anonymous_user_id,url\n")
    return raw


def _executor(cwd: Path):
    import boto3

    from clickstream.deploy.actions import Executor
    from clickstream.deploy.config import load_settings, with_defaults

    ex = Executor(boto3.session.Session(region_name="us-east-1"), region="us-east-1")
    account = ex.read("sts", "get_caller_identity")["Account"]
    return ex, with_defaults(load_settings(cwd / "clickstream.toml"), account, "us-east-1")


def test_region_resolution_order(monkeypatch) -> None:
    from clickstream.deploy.config import DEFAULT_REGION, resolve_region

    monkeypatch.delenv("CLICKSTREAM_REGION", raising=False)
    assert resolve_region("eu-west-1", "ap-south-1", "us-west-2") == "eu-west-1"
    assert resolve_region(None, "ap-south-1", "us-west-2") == "us-west-2"
    assert resolve_region(None, "ap-south-1", None) == "ap-south-1"
    assert resolve_region(None, "", None) == DEFAULT_REGION
    monkeypatch.setenv("CLICKSTREAM_REGION", "eu-north-1")
    assert resolve_region(None, "ap-south-1", "us-west-2") == "eu-north-1"
    assert resolve_region("eu-west-1", "", None) == "eu-west-1"


def test_no_region_configured_anywhere(aws, tmp_path: Path, monkeypatch) -> None:
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    (tmp_path / "aws-config").write_text("")
    (tmp_path / "clickstream.toml").write_text(
        f'[deploy]\nproject = "{name}"\ninput = "s3://{raw}/clicks/"\n'
    )
    for var in ("AWS_DEFAULT_REGION", "AWS_REGION", "CLICKSTREAM_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    # Glue, EMR, Kinesis and Athena clients are all built on this path (reads run in a dry run).
    dry = cli("deploy", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "NoRegion" not in dry.stderr and "Traceback" not in dry.stderr
    status = cli("status", cwd=tmp_path)
    assert status.returncode == 1 and "Traceback" not in status.stderr
    assert f"no emr-serverless application named {name}-etl" in status.stderr
    down = cli("teardown", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    no_secrets(dry, status, down)


def test_athena_view_failure_is_one_line_naming_view_and_reason(aws, tmp_path: Path) -> None:
    from botocore.stub import Stubber

    from clickstream.deploy.glue import run_athena
    from clickstream.errors import DeployError

    name = f"cs{uuid.uuid4().hex[:8]}"
    (tmp_path / "clickstream.toml").write_text(
        f'[deploy]\nproject = "{name}"\ninput = "s3://{name}-raw/clicks/"\n'
    )
    ex, s = _executor(tmp_path)
    athena = ex.client("athena")
    with Stubber(athena) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"})
        for st in ("QUEUED", "RUNNING"):
            stub.add_response("get_query_execution", {"QueryExecution": {"Status": {"State": st}}})
        stub.add_response(
            "get_query_execution",
            {
                "QueryExecution": {
                    "Status": {
                        "State": "FAILED",
                        "StateChangeReason": "line 3:8: Column 'evnt_time'\ncannot be resolved",
                    }
                }
            },
        )
        with pytest.raises(DeployError) as caught:
            run_athena(ex, s, "clickstream.sessions", "CREATE OR REPLACE VIEW sessions AS ...")
        stub.assert_no_pending_responses()
    message = str(caught.value)
    assert "\n" not in message
    assert "clickstream.sessions" in message and "evnt_time' cannot be resolved" in message

    with Stubber(athena) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-2"})
        stub.add_response(
            "get_query_execution", {"QueryExecution": {"Status": {"State": "RUNNING"}}}
        )
        stub.add_response(
            "get_query_execution", {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}}
        )
        run_athena(ex, s, "clickstream.pageviews_daily", "CREATE OR REPLACE VIEW x AS SELECT 1")
        stub.assert_no_pending_responses()


def test_sixty_clusters_all_found_and_terminated(aws, tmp_path: Path) -> None:
    import boto3

    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    (tmp_path / "clickstream.toml").write_text(
        f'[deploy]\nproject = "{name}"\ninput = "s3://{raw}/clicks/"\n'
    )
    emr, cluster = boto3.client("emr"), f"{name}-etl"
    for _ in range(60):
        emr.run_job_flow(
            Name=cluster,
            ReleaseLabel="emr-7.10.0",
            Instances={"InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
            JobFlowRole="r",
            ServiceRole="r",
        )
    first = emr.list_clusters(ClusterStates=["WAITING", "RUNNING"])
    assert len(first["Clusters"]) == 50 and first.get("Marker"), "one page must not hold them all"
    down = cli("teardown", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    pages = emr.get_paginator("list_clusters").paginate()
    mine = [
        c["Status"]["State"] for p in pages for c in p["Clusters"] if c["Name"] == f"{name}-etl"
    ]
    assert len(mine) == 60 and all(st == "TERMINATED" for st in mine), mine


def _deploy_steps():
    from clickstream.deploy import aws as deploy_aws

    return deploy_aws.STEPS


@pytest.mark.parametrize("done", range(len(_deploy_steps()) + 1))
def test_teardown_after_a_deploy_interrupted_at_each_step(aws, tmp_path: Path, done: int) -> None:
    from clickstream.deploy.teardown import teardown

    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    (tmp_path / "clickstream.toml").write_text(
        f'[deploy]\nproject = "{name}"\ninput = "s3://{raw}/clicks/"\n'
        f'glue_database = "{name}"\nrelease_label = "emr-7.10.0"\n'
    )
    ex, s = _executor(tmp_path)
    ctx: dict = {}
    for step in _deploy_steps()[:done]:
        step(ex, s, ctx)
    teardown(ex, s, delete_data=True)
    left = state(aws, name)
    assert left["buckets"] == [raw] and left["roles"] == []
    assert name not in left["databases"]
    assert all(st == "TERMINATED" for _, st in left["clusters"])
    # Twice is harmless: everything is already gone.
    ex2, _ = _executor(tmp_path)
    teardown(ex2, s, delete_data=True)
    assert all(o.status in ("absent", "kept") for o in ex2.outcomes), ex2.outcomes


@pytest.mark.parametrize("configure", [False, True], ids=["default", "configure-existing"])
def test_user_buckets_untouched(aws, tmp_path: Path, configure: bool) -> None:
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    code, lake = f"{name}-mycode", f"{name}-mylake"
    for bucket in (code, lake):
        aws.create_bucket(Bucket=bucket)
        aws.put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [{"Key": "owner", "Value": "data-team"}]}
        )
        aws.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=KMS)
        aws.put_object(Bucket=bucket, Key="theirs/keep.txt", Body=b"mine")
        aws.put_object(Bucket=bucket, Key="jobs-theirs.txt", Body=b"mine too")
    (tmp_path / "clickstream.toml").write_text(
        f'[deploy]\nproject = "{name}"\ninput = "s3://{raw}/clicks/"\n'
        f'code_bucket = "{code}"\nlake_bucket = "{lake}"\nrelease_label = "emr-7.10.0"\n'
        f'glue_database = "{name}"\nconfigure_existing_buckets = {str(configure).lower()}\n'
    )
    up = cli("deploy", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert aws.list_objects_v2(Bucket=code, Prefix="jobs/")["KeyCount"] > 0
    for bucket in (code, lake):
        tagset = {t["Key"]: t["Value"] for t in aws.get_bucket_tagging(Bucket=bucket)["TagSet"]}
        expected = {"owner": "data-team", **({"project": name} if configure else {})}
        assert tagset == expected
        enc = aws.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    down = cli("teardown", "--delete-data", "--yes", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    for bucket in (code, lake):
        keys = sorted(o["Key"] for o in aws.list_objects_v2(Bucket=bucket).get("Contents", []))
        assert keys == ["jobs-theirs.txt", "theirs/keep.txt"], (bucket, keys)
        tagset = {t["Key"]: t["Value"] for t in aws.get_bucket_tagging(Bucket=bucket)["TagSet"]}
        assert tagset["owner"] == "data-team"
    assert "not created by deploy" in down.stdout
    no_secrets(up, down)
    assert os.environ.get("AWS_ENDPOINT_URL")


def test_untagged_subnet_is_refused_before_anything_is_created(aws, tmp_path: Path) -> None:
    import boto3

    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=name, Description="emr", VpcId=vpc)["GroupId"]
    (tmp_path / "clickstream.toml").write_text(
        f'[deploy]\nproject = "{name}"\ninput = "s3://{raw}/clicks/"\nsubnet_id = "{subnet}"\n'
        f'master_security_group = "{group}"\ncore_security_group = "{group}"\n'
        f'release_label = "emr-7.10.0"\nglue_database = "{name}"\nruntime = "emr-ec2"\n'
    )
    refused = cli("deploy", cwd=tmp_path)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    [line] = [ln for ln in refused.stderr.splitlines() if ln.strip()]
    assert subnet in line and "for-use-with-amazon-emr-managed-policies=true" in line
    assert state(aws, name)["buckets"] == [raw] and state(aws, name)["roles"] == []

    tag = [{"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"}]
    ec2.create_tags(Resources=[subnet], Tags=tag)
    refused = cli("deploy", cwd=tmp_path)
    assert refused.returncode != 0 and f"security group {group} lacks the tag" in refused.stderr

    ec2.create_tags(Resources=[group], Tags=tag)
    up = cli("deploy", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    emr = boto3.client("emr")
    [summary] = [c for c in every(emr, "list_clusters", "Clusters") if c["Name"] == f"{name}-etl"]
    attrs = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"]["Ec2InstanceAttributes"]
    assert attrs["Ec2SubnetId"] == subnet
    assert attrs["EmrManagedMasterSecurityGroup"] == group
    assert cli("teardown", cwd=tmp_path).returncode == 0


def test_run_job_flow_retries_only_while_the_instance_profile_propagates(
    aws, tmp_path: Path
) -> None:
    from botocore.stub import Stubber

    from clickstream.deploy.emr import run_job_flow
    from clickstream.errors import DeployError

    name = f"cs{uuid.uuid4().hex[:8]}"
    (tmp_path / "clickstream.toml").write_text(
        f'[deploy]\nproject = "{name}"\ninput = "s3://{name}-raw/clicks/"\n'
    )
    ex, _ = _executor(tmp_path)
    params = {"Name": "x", "Instances": {}}
    with Stubber(ex.client("emr")) as stub:
        stub.add_client_error(
            "run_job_flow", "ValidationException", "Invalid InstanceProfile: x-emr-ec2."
        )
        stub.add_response("run_job_flow", {"JobFlowId": "j-1"}, params)
        assert run_job_flow(ex, params)["JobFlowId"] == "j-1"
        stub.assert_no_pending_responses()
    with Stubber(ex.client("emr")) as stub:
        stub.add_client_error("run_job_flow", "ValidationException", "Invalid release label")
        with pytest.raises(DeployError, match="Invalid release label"):
            run_job_flow(ex, params)
