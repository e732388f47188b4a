"""An S3 lake with keys in the environment: no query route shows the secret or writes to S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from clickstream.pipeline import EtlOptions, run_etl
from tests.attack.conftest import ROWS
from tests.aws.conftest import FAKE_KEY_ID, FAKE_SECRET
from tests.aws.conftest import aws as aws  # noqa: F401 (fixture)
from tests.aws.conftest import moto_endpoint as moto_endpoint  # noqa: F401 (fixture)
from tests.conftest import write_csv

pytestmark = pytest.mark.aws

ROUTES = [
    "SELECT current_setting('s3_secret_access_key')",
    "SELECT current_setting('s3_session_token')",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM duckdb_secrets(redact := false)",
    "SELECT * FROM which_secret('s3://x/y', 's3')",
    "SET s3_secret_access_key = 'x'",
    "CREATE SECRET leak (TYPE s3, SECRET 'x')",
    "SELECT * FROM read_parquet('s3://no-such-bucket-zz/x.parquet')",
    "SELECT * FROM glob('s3://{bucket}/**')",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO 's3://{bucket}/prod/clickstream/x.parquet'",
    "COPY (SELECT 1) TO 's3://{bucket}/prod/evil.csv'",
]


@pytest.fixture
def s3_lake(aws, tmp_path: Path) -> tuple[str, str]:
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    aws.create_bucket(Bucket=bucket)
    src = write_csv(tmp_path / "a.csv", ROWS)
    run_etl(EtlOptions(input=str(src), lake=f"s3://{bucket}/prod"))
    return bucket, f"s3://{bucket}/prod"


def _objects(aws, bucket: str) -> dict[str, str]:
    return {o["Key"]: o["ETag"] for o in aws.list_objects_v2(Bucket=bucket)["Contents"]}


@pytest.mark.parametrize("route", ROUTES)
def test_no_credential_route(aws, s3_lake, tmp_path: Path, route: str) -> None:
    bucket, root = s3_lake
    before = _objects(aws, bucket)
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    for fmt in ("table", "json"):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "clickstream",
                "sql",
                route.format(bucket=bucket),
                "-l",
                root,
                "-f",
                fmt,
            ],  # fmt: skip
            capture_output=True,
            text=True,
            env=env,
        )
        assert FAKE_SECRET not in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        if proc.returncode != 0:
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _objects(aws, bucket) == before
    assert not (home / ".duckdb").exists()


def test_s3_lake_still_answers(aws, s3_lake) -> None:
    _, root = s3_lake
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "clickstream",
            "sql",
            "SELECT count(*) AS n FROM clickstream",
            "-l",
            root,
            "-f",
            "csv",
        ],  # fmt: skip
        capture_output=True,
        text=True,
    )
    assert proc.stdout == "n\n2\n", proc.stderr


SESSION_TOKEN = "fake-session-token-do-not-leak-91b2"


@pytest.mark.parametrize("route", ROUTES[:6])
def test_session_token_never_shown(aws, s3_lake, route: str) -> None:
    _, root = s3_lake
    env = {**os.environ, "AWS_SESSION_TOKEN": SESSION_TOKEN}
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream", "sql", route, "-l", root, "-f", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert SESSION_TOKEN not in proc.stdout + proc.stderr
    assert FAKE_SECRET not in proc.stdout + proc.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clickstream", *args], capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "deletes",
    [["other-prefix/victim.txt"], ["prod/_runs/x.json"], ["prod/clickstream/../victim.txt"]],
)
def test_hostile_s3_commit_log_is_never_applied(aws, s3_lake, tmp_path: Path, deletes) -> None:
    bucket, root = s3_lake
    aws.put_object(Bucket=bucket, Key="other-prefix/victim.txt", Body=b"keep me")
    run = "20240101T000000Z-abcdef"
    body = json.dumps({"run_id": run, "uploads": [], "deletes": deletes}).encode()
    aws.put_object(Bucket=bucket, Key=f"prod/_runs/{run}.commit.json", Body=body)
    before = _objects(aws, bucket)
    # Readers refuse to read while a commit log is present, and never act on it.
    one = _cli("sql", "SELECT count(*) FROM clickstream", "-l", root)
    assert one.returncode == 1 and "commit.json" in one.stderr
    assert len(one.stderr.strip().splitlines()) == 1
    # The writer validates it: refused, nothing deleted.
    src = write_csv(tmp_path / "n.csv", ["u9,https://b.com/,1706745600,C,L,1x1"])
    etl = _cli("etl", "-q", "-i", str(src), "-l", root)
    assert etl.returncode == 1 and "not applied" in etl.stderr, etl.stderr
    assert len(etl.stderr.strip().splitlines()) == 1
    after = _objects(aws, bucket)
    assert {k: v for k, v in after.items() if not k.endswith("_lock")} == before


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('s3://{bucket}-other/x.parquet')",
        "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM read_text('s3://{bucket}/prod/_runs/x.json')",
    ],
)
def test_s3_lake_session_reads_only_the_lake(aws, s3_lake, sql: str) -> None:
    bucket, root = s3_lake
    proc = _cli("sql", sql.format(bucket=bucket), "-l", root)
    assert proc.returncode == 1 and "Permission Error" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_catalog_of_an_s3_lake_holds_no_credential(aws, s3_lake, tmp_path: Path) -> None:
    _, root = s3_lake
    out = tmp_path / "lake.duckdb"
    proc = _cli("catalog", "-o", str(out), "-l", root)
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert FAKE_SECRET.encode() not in data and FAKE_KEY_ID.encode() not in data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "lake.duckdb"]  # no .tmp/.wal
