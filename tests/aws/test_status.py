"""``status`` reads the lake's run reports; the emr-ec2 runtime is scheduled too (moto server).

moto runs no Spark, so the lake's runs here are made by the real ETL (DuckDB engine) writing the
deployed S3 lake, exactly the reports a job run on EMR writes.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from clickstream.generate import generate
from clickstream.pipeline import EtlOptions, run_etl
from tests.aws.test_deploy import cli, every, no_secrets, state

pytestmark = pytest.mark.aws


def _project(aws, tmp_path: Path, runtime: str) -> tuple[str, str, Path]:
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = f"{name}-raw"
    aws.create_bucket(Bucket=raw)
    aws.put_object(Bucket=raw, Key="clicks/a.csv", Body=b"anonymous_user_id,url\n")
    (tmp_path / "clickstream.toml").write_text(
        f'[deploy]\nproject = "{name}"\ninput = "s3://{raw}/clicks/"\n'
        f'release_label = "emr-7.10.0"\nglue_database = "{name}"\nruntime = "{runtime}"\n'
    )
    return name, raw, tmp_path


def _lake(name: str) -> str:
    import boto3

    account = boto3.client("sts").get_caller_identity()["Account"]
    return f"{name}-lake-{account}"


def test_status_shows_the_lakes_last_runs(aws, tmp_path: Path) -> None:
    name, _, cwd = _project(aws, tmp_path, "emr-serverless")
    up = cli("deploy", cwd=cwd)
    assert up.returncode == 0, up.stderr
    lake_uri = f"s3://{_lake(name)}/lake"

    empty = cli("status", cwd=cwd)
    assert empty.returncode == 0, empty.stderr
    assert f"lake {lake_uri}: no runs yet" in empty.stdout

    src = generate(tmp_path / "in" / "a.csv", 400, seed=3, bad_fraction=0.1)
    first = run_etl(EtlOptions(input=str(src), lake=lake_uri))
    generate(tmp_path / "in" / "b.csv", 300, seed=4)
    # The scheduled run's case: a.csv already ingested, only b.csv is new.
    second = run_etl(EtlOptions(input=str(tmp_path / "in"), lake=lake_uri))
    assert first.rows_rejected > 0 and second.rows_read == 300

    shown = cli("status", cwd=cwd)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    start = lines.index(f"lake {lake_uri}: last runs")
    newest, older = lines[start + 1], lines[start + 2]
    assert newest.startswith(f"  {second.run_id} (duckdb) finished {second.finished_at}: ")
    assert (
        f"read 300, written {second.rows_written}, rejected 0, "
        f"duplicates {second.rows_duplicate}; 1 new file(s), 1 already ingested"
    ) in newest
    assert older.startswith(f"  {first.run_id} (duckdb) finished {first.finished_at}: ")
    assert (
        f"read {first.rows_read}, written {first.rows_written}, "
        f"rejected {first.rows_rejected}, duplicates {first.rows_duplicate}; 1 new file(s)"
    ) in older
    no_secrets(up, empty, shown)


def test_status_with_a_damaged_run_report_says_so_in_one_line(aws, tmp_path: Path) -> None:
    name, _, cwd = _project(aws, tmp_path, "emr-serverless")
    up = cli("deploy", cwd=cwd)
    assert up.returncode == 0, up.stderr
    aws.put_object(
        Bucket=_lake(name), Key="lake/_runs/20990101T000000Z-abcdef.json", Body=b"{not json"
    )
    proc = cli("status", cwd=cwd)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "20990101T000000Z-abcdef.json" in line
    # What could be read was shown first.
    assert f"schedule {name}-etl" in proc.stdout


def test_emr_ec2_is_scheduled_with_its_own_run_job_flow(aws, tmp_path: Path) -> None:
    import boto3

    name, _, cwd = _project(aws, tmp_path, "emr-ec2")
    up = cli("deploy", cwd=cwd)
    assert up.returncode == 0, up.stderr
    emr, iam = boto3.client("emr"), boto3.client("iam")
    [summary] = [c for c in every(emr, "list_clusters", "Clusters") if c["Name"] == f"{name}-etl"]
    cluster = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"]
    [step] = emr.list_steps(ClusterId=summary["Id"])["Steps"]

    sched = boto3.client("scheduler").get_schedule(Name=f"{name}-etl")
    assert sched["ScheduleExpression"] == "rate(1 day)" and sched["State"] == "ENABLED"
    target = sched["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:emr:runJobFlow"
    assert target["RoleArn"].endswith(f":role/{name}-scheduler")
    request = json.loads(target["Input"])
    # The same self-terminating cluster deploy started: same step, roles, tags, release.
    assert request["Name"] == cluster["Name"] and request["ReleaseLabel"] == "emr-7.10.0"
    assert request["Instances"]["KeepJobFlowAliveWhenNoSteps"] is False
    [req_step] = request["Steps"]
    assert req_step["HadoopJarStep"]["Args"] == step["Config"]["Args"]
    assert req_step["ActionOnFailure"] == "TERMINATE_CLUSTER"
    assert request["ServiceRole"] == f"{name}-emr-service"
    assert request["JobFlowRole"] == f"{name}-emr-ec2"
    assert {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"} in request["Tags"]
    assert {"Key": "project", "Value": name} in request["Tags"]

    doc = iam.get_role_policy(RoleName=f"{name}-scheduler", PolicyName="start-job-run")
    doc = doc["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert set(by_sid) == {"StartTheEtlCluster", "PassTheServiceRole", "PassTheNodeRole"}
    start = by_sid["StartTheEtlCluster"]
    assert start["Action"] == ["elasticmapreduce:RunJobFlow", "elasticmapreduce:AddTags"]
    assert start["Condition"] == {"StringEquals": {"aws:RequestTag/project": name}}
    service = iam.get_role(RoleName=f"{name}-emr-service")["Role"]["Arn"]
    node = iam.get_role(RoleName=f"{name}-emr-ec2")["Role"]["Arn"]
    assert by_sid["PassTheServiceRole"]["Resource"] == [service]
    assert by_sid["PassTheServiceRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "elasticmapreduce.amazonaws.com"}
    }
    assert by_sid["PassTheNodeRole"]["Resource"] == [node]
    assert by_sid["PassTheNodeRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}
    }
    assert iam.list_attached_role_policies(RoleName=f"{name}-scheduler")["AttachedPolicies"] == []

    status = cli("status", cwd=cwd)
    assert status.returncode == 0, status.stderr
    assert f"schedule {name}-etl: rate(1 day) (ENABLED)" in status.stdout
    assert re.search(rf"lake s3://{name}-lake-\d+/lake: no runs yet", status.stdout)

    again = cli("deploy", "--schedule", "cron(0 3 * * ? *)", cwd=cwd)
    assert again.returncode == 0, again.stderr
    sched = boto3.client("scheduler").get_schedule(Name=f"{name}-etl")
    assert sched["ScheduleExpression"] == "cron(0 3 * * ? *)"

    down = cli("teardown", cwd=cwd)
    assert down.returncode == 0, down.stderr
    assert boto3.client("scheduler").list_schedules(NamePrefix=name)["Schedules"] == []
    assert state(aws, name)["roles"] == []
    no_secrets(up, status, again, down)
