"""The ETL and SQL on S3, against a real HTTP endpoint (moto server), not patched functions."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from clickstream.generate import generate
from clickstream.lake.commit import FAULT_ENV
from clickstream.pipeline import EtlOptions, run_etl
from clickstream.query.session import open_lake, run_query
from tests.aws.conftest import FAKE_KEY_ID, FAKE_SECRET

pytestmark = pytest.mark.aws


def cli(*args: str, env: dict | None = None):
    import os

    return subprocess.run(
        [sys.executable, "-m", "clickstream", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def buckets(aws, tmp_path: Path):
    """A raw bucket holding a plain and a gzipped CSV (from one generated file), a lake bucket."""
    raw, lake = f"raw-{uuid.uuid4().hex[:8]}", f"lake-{uuid.uuid4().hex[:8]}"
    aws.create_bucket(Bucket=raw)
    aws.create_bucket(Bucket=lake)
    local = tmp_path / "in"
    generate(local / "day1.csv", 3_000, seed=21, bad_fraction=0.05)
    generate(local / "day2.csv", 2_000, seed=22, bad_fraction=0.05)
    aws.put_object(Bucket=raw, Key="clicks/2024/day1.csv", Body=(local / "day1.csv").read_bytes())
    aws.put_object(
        Bucket=raw,
        Key="clicks/2024/day2.csv.gz",
        Body=gzip.compress((local / "day2.csv").read_bytes()),
    )
    aws.put_object(Bucket=raw, Key="clicks/notes.txt", Body=b"not input")
    return raw, lake, local


def counts(report):
    return (
        report.rows_read,
        report.rows_written,
        report.rows_rejected,
        report.rows_duplicate,
        report.rejected_by_reason,
        [(p.year, p.month, p.rows) for p in report.partitions],
    )


def test_etl_from_s3_to_s3_matches_local_run(buckets, tmp_path: Path, aws) -> None:
    raw, lake, local = buckets
    on_s3 = run_etl(EtlOptions(input=f"s3://{raw}/clicks/", lake=f"s3://{lake}/prod"))
    here = run_etl(EtlOptions(input=str(local), lake=tmp_path / "local-lake"))
    assert counts(on_s3) == counts(here)
    assert [f.path for f in on_s3.input_files] == [
        f"s3://{raw}/clicks/2024/day1.csv",
        f"s3://{raw}/clicks/2024/day2.csv.gz",
    ]
    keys = [o["Key"] for o in aws.list_objects_v2(Bucket=lake)["Contents"]]
    assert any(
        k.startswith("prod/clickstream/year=2024/month=") and k.endswith(".parquet") for k in keys
    )
    assert f"prod/_runs/{on_s3.run_id}.json" in keys
    assert any(k.startswith("prod/clickstream_rejected/") for k in keys)
    assert not any(k.endswith(".commit.json") or k.endswith("_lock") for k in keys)
    # The same SQL answers on both lakes.
    q = "SELECT count(*), count(DISTINCT anonymous_user_id), sum(pageviews) FROM sessions"
    assert (
        run_query(open_lake(f"s3://{lake}/prod"), q)[1]
        == run_query(open_lake(tmp_path / "local-lake"), q)[1]
    )


def test_globs_reruns_and_full_refresh_on_s3(buckets) -> None:
    raw, lake, _ = buckets
    root = f"s3://{lake}/l"
    first = run_etl(EtlOptions(input=f"s3://{raw}/clicks/*/*.csv", lake=root))
    assert [f.path for f in first.input_files] == [f"s3://{raw}/clicks/2024/day1.csv"]
    again = run_etl(EtlOptions(input=f"s3://{raw}/clicks/", lake=root))
    assert len(again.input_files) == 1 and again.skipped_files == [
        f"s3://{raw}/clicks/2024/day1.csv"
    ]
    refresh = run_etl(
        EtlOptions(input=f"s3://{raw}/clicks/2024/day2.csv.gz", lake=root, full_refresh=True)
    )
    rows = run_query(open_lake(root), "SELECT count(*) FROM clickstream")[1][0][0]
    assert rows == refresh.rows_written


def test_cli_sql_on_s3_lake_and_no_secret_anywhere(buckets) -> None:
    raw, lake, _ = buckets
    root = f"s3://{lake}/cli"
    etl = cli("--debug", "etl", "-i", f"s3://{raw}/clicks/", "-l", root)
    assert etl.returncode == 0, etl.stderr
    sql = cli("--debug", "sql", "SELECT count(*) AS n FROM clickstream", "-l", root, "-f", "json")
    assert sql.returncode == 0, sql.stderr
    n = json.loads(sql.stdout)[0]["n"]
    assert n > 4_000
    refused = cli("sql", f"COPY (SELECT 1) TO '{root}/clickstream/x.parquet'", "-l", root)
    assert refused.returncode == 1 and "refused" in refused.stderr
    for proc in (etl, sql, refused):
        for secret in (FAKE_SECRET, FAKE_KEY_ID):
            assert secret not in proc.stdout and secret not in proc.stderr


def test_missing_bucket_and_prefix_are_clear_errors(aws) -> None:
    proc = cli("etl", "-i", "s3://no-such-bucket-xyz/x/", "-l", "s3://no-such-bucket-xyz/l")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no-such-bucket-xyz" in proc.stderr and FAKE_SECRET not in proc.stderr


def test_killed_mid_commit_on_s3_is_rolled_back(buckets, aws) -> None:
    raw, lake, _ = buckets
    root = f"s3://{lake}/crash"
    src = f"s3://{raw}/clicks/2024/day1.csv"
    proc = cli("etl", "-q", "-i", src, "-l", root, env={FAULT_ENV: "mid_commit"})
    assert proc.returncode == -signal.SIGKILL
    keys = [o["Key"] for o in aws.list_objects_v2(Bucket=lake).get("Contents", [])]
    assert any(k.endswith(".commit.json") for k in keys)  # interrupted: log, lock, one upload
    # The next writer takes over the dead run's lock, undoes its uploads and ingests the file.
    report = run_etl(EtlOptions(input=src, lake=root))
    assert report.rows_read == 3_000
    total = run_query(open_lake(root), "SELECT count(*) FROM clickstream")[1][0][0]
    assert total == report.rows_written
    keys = [o["Key"] for o in aws.list_objects_v2(Bucket=lake)["Contents"]]
    assert not any(k.endswith(".commit.json") or k.endswith("_lock") for k in keys)
