"""deploy / status / teardown against a real HTTP endpoint (moto server), not patched functions.

moto's limits: EMR steps never execute and Athena runs no SQL; these tests check the calls and
the resulting resource state, not a Spark run on EMR.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.aws.conftest import FAKE_KEY_ID, FAKE_SECRET

pytestmark = pytest.mark.aws


def cli(*args: str, cwd: Path):
    return subprocess.run(
        [sys.executable, "-m", "clickstream", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
    )


def no_secrets(*procs) -> None:
    for proc in procs:
        for secret in (FAKE_SECRET, FAKE_KEY_ID):
            assert secret not in proc.stdout + proc.stderr


@pytest.fixture
def project(aws, tmp_path: Path):
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = f"{name}-raw"
    aws.create_bucket(Bucket=raw)
    aws.put_object(
        Bucket=raw,
        Key="clicks/a.csv",
        Body=b"anonymous_user_id,url,time,browser,os,"
        b"screen_resolution\nu,https://a.com/,1700000000,b,o,1x1\n",
    )
    (tmp_path / "clickstream.toml").write_text(
        f'[deploy]\nproject = "{name}"\ninput = "s3://{raw}/clicks/"\ncore_instance_count = 3\n'
        'release_label = "emr-7.10.0"\nruntime = "emr-ec2"\n'
    )
    return name, raw, tmp_path


def every(client, operation: str, key: str, **kwargs) -> list:
    """All pages: the moto server is shared, so other tests' clusters fill the first pages."""
    pages = client.get_paginator(operation).paginate(**kwargs)
    return [item for page in pages for item in page[key]]


def athena_made_the_views(database: str) -> None:
    """What Athena's CREATE VIEW leaves in Glue on AWS (moto runs no SQL): one VIRTUAL_VIEW
    table per view. Only the tests play this boundary; deploy itself never writes views to Glue."""
    import boto3

    from clickstream.query.views import VIEW_NAMES

    glue = boto3.client("glue")
    for view in VIEW_NAMES:
        glue.create_table(
            DatabaseName=database,
            TableInput={
                "Name": view,
                "TableType": "VIRTUAL_VIEW",
                "Parameters": {"presto_view": "true", "comment": "Presto View"},
                "ViewOriginalText": "/* Presto View: e30= */",
            },
        )


def state(session_client, name: str) -> dict:
    import boto3

    s3 = session_client
    iam, emr, glue = (boto3.client(s) for s in ("iam", "emr", "glue"))
    return {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"] if name in b["Name"]),
        "roles": sorted(
            r["RoleName"] for r in every(iam, "list_roles", "Roles") if name in r["RoleName"]
        ),
        "clusters": sorted(
            (c["Id"], c["Status"]["State"])
            for c in every(emr, "list_clusters", "Clusters")
            if c["Name"].startswith(name)
        ),
        "databases": sorted(d["Name"] for d in every(glue, "get_databases", "DatabaseList")),
    }


def test_dry_run_changes_nothing(project, aws) -> None:
    name, _, cwd = project
    before = state(aws, name)
    proc = cli("deploy", "--dry-run", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert state(aws, name) == before
    assert "would create" in proc.stdout
    assert "s3.create_bucket" in proc.stderr and "emr.run_job_flow" in proc.stderr
    assert "iam.create_role" in proc.stderr and "glue.create_table" in proc.stderr
    no_secrets(proc)


def test_deploy_status_redeploy_teardown(project, aws) -> None:
    import boto3

    name, raw, cwd = project
    first = cli("deploy", cwd=cwd)
    assert first.returncode == 0, first.stderr
    account = boto3.client("sts").get_caller_identity()["Account"]
    code, lake = f"{name}-code-{account}", f"{name}-lake-{account}"

    # Buckets: private and encrypted.
    for bucket in (code, lake):
        block = aws.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4
        rule = aws.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert rule["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    # IAM: least privilege on the project's buckets only.
    iam = boto3.client("iam")
    policy = iam.get_role_policy(RoleName=f"{name}-emr-ec2", PolicyName="lake-access")
    doc = policy["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    resources = [r for st in doc["Statement"] for r in st["Resource"]]
    assert all(any(b in r for b in (raw, code, lake)) for r in resources), resources
    assert not any(r in ("*", "arn:aws:s3:::*") for r in resources)
    assert not any("*" in a for st in doc["Statement"] for a in st["Action"])
    # The service role may pass exactly the node role, to EC2 only (the managed policy passes
    # only EMR_EC2_DefaultRole).
    passing = iam.get_role_policy(RoleName=f"{name}-emr-service", PolicyName="pass-node-role")
    pdoc = passing["PolicyDocument"]
    pdoc = json.loads(pdoc) if isinstance(pdoc, str) else pdoc
    [grant] = pdoc["Statement"]
    assert grant["Action"] == ["iam:PassRole"]
    assert grant["Resource"] == [iam.get_role(RoleName=f"{name}-emr-ec2")["Role"]["Arn"]]
    assert grant["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    for role in (f"{name}-emr-ec2", f"{name}-emr-service"):
        attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        assert not any("FullAccess" in p["PolicyArn"] for p in attached)

    # EMR: the ETL step, terminating itself when done or failed.
    emr = boto3.client("emr")
    [summary] = [c for c in every(emr, "list_clusters", "Clusters") if c["Name"] == f"{name}-etl"]
    cluster = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"]
    assert cluster["AutoTerminate"] is True and cluster["ReleaseLabel"] == "emr-7.10.0"
    # AmazonEMRServicePolicy_v2 lets EMR launch instances only for clusters with this tag.
    assert sorted(cluster["Tags"], key=lambda t: t["Key"]) == [
        {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"},
        {"Key": "project", "Value": name},
    ]
    [step] = emr.list_steps(ClusterId=summary["Id"])["Steps"]
    assert step["ActionOnFailure"] == "TERMINATE_CLUSTER"
    args = step["Config"]["Args"]
    assert args[0] == "spark-submit" and args[-4:] == [
        "--input",
        f"s3://{raw}/clicks/",
        "--lake",
        f"s3://{lake}/lake",
    ]
    # The contract's huge generated method JIT-compiled on EMR's driver and executors too.
    for side in ("driver", "executor"):
        conf = f"spark.{side}.extraJavaOptions=-XX:-DontCompileHugeMethods"
        assert conf in args and args[args.index(conf) - 1] == "--conf", args
    zip_uri = args[args.index("--py-files") + 1]
    zip_bucket, zip_key = zip_uri.removeprefix("s3://").split("/", 1)
    assert zip_bucket == code and aws.head_object(Bucket=code, Key=zip_key)["ContentLength"] > 0
    [boot] = emr.list_bootstrap_actions(ClusterId=summary["Id"])["BootstrapActions"]
    assert boot["ScriptPath"].startswith(f"s3://{code}/jobs/")
    # The nodes' own Python 3.9 runs the job: the bootstrap only adds boto3 to it.
    script_key = boot["ScriptPath"].split("/", 3)[3]
    script = aws.get_object(Bucket=code, Key=script_key)["Body"].read().decode()
    assert "python3 -m pip install" in script and "3.11" not in script

    # Glue: the table with partition projection.
    glue = boto3.client("glue")
    # The project's own database (a shared default let projects clobber each other).
    table = glue.get_table(DatabaseName=name, Name="clickstream")["Table"]
    assert table["Parameters"]["projection.enabled"] == "true"
    assert table["Parameters"]["clickstream-project"] == name
    assert [k["Name"] for k in table["PartitionKeys"]] == ["year", "month"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{lake}/lake/clickstream/"

    # Status shows the cluster, its step and the logs.
    status = cli("status", cwd=cwd)
    assert status.returncode == 0, status.stderr
    assert summary["Id"] in status.stdout and f"s3://{code}/emr-logs/" in status.stdout

    # A second deploy creates nothing new (the views, made by Athena, are replaced).
    athena_made_the_views(name)
    before = state(aws, name)
    second = cli("deploy", cwd=cwd)
    assert second.returncode == 0, second.stderr
    assert "created" not in second.stdout and "exists" in second.stdout
    assert second.stdout.count("replaced") == 5
    assert state(aws, name) == before

    # Teardown removes what deploy made and keeps the data.
    down = cli("teardown", cwd=cwd)
    assert down.returncode == 0, down.stderr
    after = state(aws, name)
    assert after["roles"] == [] and name not in after["databases"]
    assert after["buckets"] == sorted([f"{name}-raw", lake])
    assert all(s in ("TERMINATING", "TERMINATED") for _, s in after["clusters"])
    no_secrets(first, status, second, down)


def test_teardown_delete_data_needs_confirmation(project, aws) -> None:
    name, _, cwd = project
    assert cli("deploy", cwd=cwd).returncode == 0
    refused = subprocess.run(
        [sys.executable, "-m", "clickstream", "teardown", "--delete-data"],
        capture_output=True,
        text=True,
        cwd=cwd,
        input="n\n",
    )
    assert refused.returncode != 0
    assert any("lake" in b for b in state(aws, name)["buckets"])
    done = cli("teardown", "--delete-data", "--yes", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert state(aws, name)["buckets"] == [f"{name}-raw"]


def test_deploy_without_input_is_a_clear_error(aws, tmp_path: Path) -> None:
    proc = cli("deploy", "--project", f"cs{uuid.uuid4().hex[:6]}", cwd=tmp_path)
    assert proc.returncode == 2 and "--input" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture
def silent_endpoint():
    """A TCP server that accepts connections and never answers (a hung endpoint)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ("deploy", "--dry-run", "--input", "s3://raw/clicks/"),
        ("etl", "-i", "s3://raw/clicks/"),
        ("etl", "-i", "in.csv", "-l", "s3://lake/prod"),
    ],
    ids=["deploy", "etl-input", "etl-lake"],
)
def test_a_silent_endpoint_fails_in_bounded_time_naming_it(
    silent_endpoint: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    from clickstream.awsclient import MAX_ATTEMPTS, READ_TIMEOUT_SECONDS

    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": silent_endpoint,
    }
    env.pop("AWS_PROFILE", None)
    (tmp_path / "in.csv").write_text(
        "anonymous_user_id,url,time,browser,os,screen_resolution\nu,https://a.com/,1700000000,b,o,1x1\n"
    )
    # Bounded by the client config (connect/read timeouts, total attempts), not by botocore's
    # defaults (60 s reads, 12 minutes seen); the subprocess timeout only keeps a bug from hanging.
    bound = MAX_ATTEMPTS * (READ_TIMEOUT_SECONDS + 10) + 30
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=bound,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    [message] = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert message.startswith("error:") and silent_endpoint in message
    assert "no answer" in message or "timeout" in message.lower()
    no_secrets(proc)
