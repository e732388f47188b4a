"""EMR Serverless, the default runtime, against moto server (moto runs no Spark: job runs end
SUCCESS at once; these tests check the resources and the calls' parameters)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.aws.test_deploy import athena_made_the_views, cli, every, no_secrets, state

pytestmark = pytest.mark.aws


@pytest.fixture
def project(aws, tmp_path: Path):
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = f"{name}-raw"
    aws.create_bucket(Bucket=raw)
    aws.put_object(Bucket=raw, Key="clicks/a.csv", Body=b"anonymous_user_id,url\n")
    (tmp_path / "clickstream.toml").write_text(
        f'[deploy]\nproject = "{name}"\ninput = "s3://{raw}/clicks/"\n'
        f'release_label = "emr-7.10.0"\nglue_database = "{name}"\n'
    )
    return name, raw, tmp_path


def _apps(name: str) -> list[dict]:
    import boto3

    client = boto3.client("emr-serverless")
    return [a for a in client.list_applications()["applications"] if a["name"] == f"{name}-etl"]


def test_serverless_deploy_status_redeploy_teardown(project, aws) -> None:
    import boto3

    name, raw, cwd = project
    up = cli("deploy", cwd=cwd)
    assert up.returncode == 0, up.stderr
    account = boto3.client("sts").get_caller_identity()["Account"]
    code, lake = f"{name}-code-{account}", f"{name}-lake-{account}"
    client = boto3.client("emr-serverless")
    [summary] = _apps(name)
    app = client.get_application(applicationId=summary["id"])["application"]
    assert app["releaseLabel"] == "emr-7.10.0" and app["type"].upper() == "SPARK"
    assert app["autoStartConfiguration"] == {"enabled": True}
    assert app["autoStopConfiguration"]["enabled"] is True
    assert app["maximumCapacity"]["cpu"] == "16 vCPU"
    assert state(aws, name)["clusters"] == []  # no EC2 cluster on this runtime

    # The execution role: trusted by EMR Serverless only, S3 scope of the project.
    iam = boto3.client("iam")
    role = iam.get_role(RoleName=f"{name}-emr-serverless")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [st["Principal"] for st in trust["Statement"]] == [
        {"Service": "emr-serverless.amazonaws.com"}
    ]
    doc = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="lake-access")
    doc = doc["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    resources = [r for st in doc["Statement"] for r in st["Resource"]]
    assert all(any(b in r for b in (raw, code, lake)) for r in resources), resources
    assert f"{name}-emr-ec2" not in {r["RoleName"] for r in every(iam, "list_roles", "Roles")}

    # The job run: the packaged job, its zip on --py-files, logs to S3.
    [run] = client.list_job_runs(applicationId=summary["id"])["jobRuns"]
    detail = client.get_job_run(applicationId=summary["id"], jobRunId=run["id"])["jobRun"]
    assert detail["executionRole"] == role["Arn"]
    submit = detail["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"].startswith(f"s3://{code}/jobs/")
    assert submit["entryPointArguments"] == [
        "--input",
        f"s3://{raw}/clicks/",
        "--lake",
        f"s3://{lake}/lake",
    ]
    params = submit["sparkSubmitParameters"].split()
    zip_uri = params[params.index("--py-files") + 1]
    assert aws.head_object(Bucket=code, Key=zip_uri.split("/", 3)[3])["ContentLength"] > 0
    logs = detail["configurationOverrides"]["monitoringConfiguration"]
    assert logs["s3MonitoringConfiguration"]["logUri"] == f"s3://{code}/emr-logs/{name}/serverless/"

    # The schedule: daily by default, starting exactly this job run, with its own narrow role.
    sched = boto3.client("scheduler").get_schedule(Name=f"{name}-etl")
    assert sched["ScheduleExpression"] == "rate(1 day)" and sched["State"] == "ENABLED"
    target = sched["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"
    request = json.loads(target["Input"])
    assert request["applicationId"] == summary["id"]
    assert request["executionRoleArn"] == role["Arn"]
    assert request["jobDriver"] == detail["jobDriver"]
    assert target["RoleArn"].endswith(f":role/{name}-scheduler")
    srole = iam.get_role(RoleName=f"{name}-scheduler")["Role"]
    strust = srole["AssumeRolePolicyDocument"]
    strust = json.loads(strust) if isinstance(strust, str) else strust
    assert [st["Principal"] for st in strust["Statement"]] == [
        {"Service": "scheduler.amazonaws.com"}
    ]
    sdoc = iam.get_role_policy(RoleName=f"{name}-scheduler", PolicyName="start-job-run")
    sdoc = sdoc["PolicyDocument"]
    sdoc = json.loads(sdoc) if isinstance(sdoc, str) else sdoc
    grants = {a: st["Resource"] for st in sdoc["Statement"] for a in st["Action"]}
    assert set(grants) == {"emr-serverless:StartJobRun", "iam:PassRole"}
    assert grants["emr-serverless:StartJobRun"] == [summary["arn"]]
    assert grants["iam:PassRole"] == [role["Arn"]]
    assert len(iam.list_role_policies(RoleName=f"{name}-scheduler")["PolicyNames"]) == 1
    assert iam.list_attached_role_policies(RoleName=f"{name}-scheduler")["AttachedPolicies"] == []

    status = cli("status", cwd=cwd)
    assert status.returncode == 0, status.stderr
    assert summary["id"] in status.stdout and run["id"] in status.stdout
    assert f"schedule {name}-etl: rate(1 day) (ENABLED)" in status.stdout

    athena_made_the_views(name)
    before = (state(aws, name), [a["id"] for a in _apps(name)])
    again = cli("deploy", cwd=cwd)
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout, again.stdout
    assert (state(aws, name), [a["id"] for a in _apps(name)]) == before

    down = cli("teardown", cwd=cwd)
    assert down.returncode == 0, down.stderr
    assert [a["state"] for a in _apps(name)] == ["TERMINATED"]
    assert boto3.client("scheduler").list_schedules(NamePrefix=name)["Schedules"] == []
    after = state(aws, name)
    assert after["roles"] == [] and after["buckets"] == sorted([raw, lake])
    no_secrets(up, status, again, down)


def test_schedule_none_runs_once_and_removes_a_schedule(project, aws) -> None:
    import boto3

    name, _, cwd = project
    assert cli("deploy", "--schedule", "rate(6 hours)", cwd=cwd).returncode == 0
    scheduler = boto3.client("scheduler")
    assert scheduler.get_schedule(Name=f"{name}-etl")["ScheduleExpression"] == "rate(6 hours)"
    once = cli("deploy", "--schedule", "none", cwd=cwd)
    assert once.returncode == 0, once.stderr
    assert scheduler.list_schedules(NamePrefix=name)["Schedules"] == []
    status = cli("status", cwd=cwd)
    assert "schedule: none" in status.stdout
    assert cli("teardown", cwd=cwd).returncode == 0
