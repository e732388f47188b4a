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


class _HoldingProxy:
    """A real HTTP endpoint on 127.0.0.1 in front of the moto server: requests ``hold`` picks
    get their connection accepted and never answered (a silent endpoint); the rest are
    forwarded to moto unchanged. So one client (DuckDB's httpfs, or one kind of call) can meet
    silence while the others work."""

    def __init__(self, upstream: str, hold) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        up = urlsplit(upstream)
        stop = self.stop = threading.Event()
        self.held: list[str] = []
        held = self.held

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _any(self) -> None:
                agent = self.headers.get("User-Agent", "")
                if hold(self.command, self.path, agent):
                    held.append(f"{self.command} {self.path} {agent.split('/')[0]}")
                    stop.wait()
                    self.close_connection = True
                    return
                body = self._body()
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"
                }
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def _silent_run(endpoint: str, *args: str) -> subprocess.CompletedProcess:
    import os

    from clickstream.awsclient import MAX_ATTEMPTS, READ_TIMEOUT_SECONDS

    # The bound comes from the clients' settings (connect/read timeouts, total attempts); this
    # timeout only keeps a regression from hanging the suite (botocore's defaults took 12 min).
    bound = MAX_ATTEMPTS * (READ_TIMEOUT_SECONDS + 10) + 60
    return subprocess.run(
        [sys.executable, "-m", "clickstream", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_ENDPOINT_URL": endpoint},
        timeout=bound,
    )


def _one_designed_line(proc: subprocess.CompletedProcess, endpoint: str) -> str:
    assert proc.returncode == 1, proc.stderr
    [message] = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert message.startswith("error:") and "Traceback" not in proc.stderr
    assert "unexpected error" not in message and "--debug" not in message
    assert endpoint in message and "no answer" in message
    for secret in (FAKE_SECRET, FAKE_KEY_ID):
        assert secret not in proc.stderr and secret not in proc.stdout
    return message


@pytest.mark.slow
@pytest.mark.parametrize(
    "held",
    ["lock", "upload"],
)
def test_a_silent_endpoint_on_a_lake_write_is_one_designed_line(
    buckets, moto_endpoint: str, tmp_path: Path, held: str
) -> None:
    _, lake, local = buckets

    def hold(method: str, path: str, agent: str) -> bool:
        if held == "lock":  # the run's first call: nothing answers at all
            return True
        return method == "PUT" and path.split("?")[0].endswith(".parquet")

    proxy = _HoldingProxy(moto_endpoint, hold)
    try:
        proc = _silent_run(proxy.url, "etl", "-i", str(local / "day1.csv"), "-l", f"s3://{lake}/w")
    finally:
        proxy.close()
    message = _one_designed_line(proc, proxy.url)
    assert proxy.held
    assert ("cannot lock" if held == "lock" else "uploading") in message
    if held == "upload":  # rolled back by the next writer: no half run is visible
        report = run_etl(EtlOptions(input=str(local / "day1.csv"), lake=f"s3://{lake}/w"))
        assert report.rows_read == 3_000


@pytest.mark.slow
def test_a_silent_endpoint_for_duckdb_httpfs_is_one_designed_line(
    buckets, moto_endpoint: str
) -> None:
    raw, lake, _ = buckets
    # boto3 (listing, headers, the census) is answered; DuckDB's own S3 reads meet silence.
    proxy = _HoldingProxy(moto_endpoint, lambda m, p, agent: "duckdb" in agent.lower())
    try:
        proc = _silent_run(
            proxy.url, "etl", "-i", f"s3://{raw}/clicks/2024/day1.csv", "-l", f"s3://{lake}/d"
        )
    finally:
        proxy.close()
    assert proxy.held and all(h.lower().endswith("duckdb") for h in proxy.held), proxy.held
    message = _one_designed_line(proc, proxy.url)
    assert "DuckDB" in message and "/clicks/2024/day1.csv" in message


def test_full_refresh_killed_after_its_report_on_s3_is_rolled_forward(buckets, aws) -> None:
    """Killed at the commit point of a full refresh (report written, old keys not yet deleted):
    readers refuse while the log is there; the next writer finishes the deletes, so the lake is
    the refresh's rows alone — never the old and the new together."""
    raw, lake, _ = buckets
    root = f"s3://{lake}/refresh"
    first = run_etl(EtlOptions(input=f"s3://{raw}/clicks/2024/day1.csv", lake=root))
    src = f"s3://{raw}/clicks/2024/day2.csv.gz"
    proc = cli(
        "etl", "-q", "--full-refresh", "-i", src, "-l", root, env={FAULT_ENV: "after_report"}
    )
    assert proc.returncode == -signal.SIGKILL
    keys = [o["Key"] for o in aws.list_objects_v2(Bucket=lake).get("Contents", [])]
    assert any(k.endswith(".commit.json") for k in keys)
    refused = cli("sql", "SELECT count(*) FROM clickstream", "-l", root)
    assert refused.returncode != 0 and "committing" in refused.stderr
    # The next writer (nothing new to read) rolls the refresh forward.
    again = run_etl(EtlOptions(input=src, lake=root))
    assert again.rows_read == 0
    keys = [o["Key"] for o in aws.list_objects_v2(Bucket=lake)["Contents"]]
    assert not any(k.endswith(".commit.json") or k.endswith("_lock") for k in keys)
    reports = [k for k in keys if k.startswith("refresh/_runs/") and k.endswith(".json")]
    bodies = [json.loads(aws.get_object(Bucket=lake, Key=k)["Body"].read()) for k in reports]
    (refreshed,) = [b for b in bodies if b["full_refresh"]]
    assert refreshed["run_id"] != first.run_id
    total = run_query(open_lake(root), "SELECT count(*) FROM clickstream")[1][0][0]
    assert total == refreshed["rows_written"] > 0  # the first run's rows are gone
