"""The S3 lake's writer lock (``_lock``, a conditional put) against a real endpoint (moto server):
a live lock refuses a second writer in one line, a stale or foreign one is taken over, and a
writer never deletes a lock that is not its own."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from clickstream.generate import generate
from clickstream.lake.s3lake import STALE_LOCK_SECONDS, S3Lake

pytestmark = pytest.mark.aws


@pytest.fixture
def lake(aws, tmp_path: Path) -> tuple[str, str, Path]:
    bucket = f"lock-{uuid.uuid4().hex[:8]}"
    aws.create_bucket(Bucket=bucket)
    src = generate(tmp_path / "in.csv", 500, seed=5)
    return bucket, f"s3://{bucket}/lake", src


def etl(src: Path, root: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clickstream", "etl", "-q", "-i", str(src), "-l", root],
        capture_output=True,
        text=True,
        timeout=300,
    )


def reports(aws, bucket: str) -> list[str]:
    found = aws.list_objects_v2(Bucket=bucket, Prefix="lake/_runs/").get("Contents", [])
    return [o["Key"] for o in found]


def test_a_live_lock_refuses_a_second_writer_in_one_line(aws, lake) -> None:
    bucket, root, src = lake
    holder = {"host": "another-host", "pid": 1, "since": time.time()}
    aws.put_object(Bucket=bucket, Key="lake/_lock", Body=json.dumps(holder).encode())
    before = aws.get_object(Bucket=bucket, Key="lake/_lock")
    proc = etl(src, root)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "another run is writing to this lake" in lines[0], proc.stderr
    after = aws.get_object(Bucket=bucket, Key="lake/_lock")
    assert after["ETag"] == before["ETag"]  # the live lock is left as it was
    assert reports(aws, bucket) == []  # nothing committed


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid  # exited and reaped: no process has it (pids are not reused at once)


_HOST = socket.gethostname()
_BODIES = {
    "older-than-6h": json.dumps(
        {"host": "another-host", "pid": 1, "since": time.time() - STALE_LOCK_SECONDS - 60}
    ),
    "dead-pid-same-host": json.dumps({"host": _HOST, "pid": "DEAD", "since": 0}),
    "json-list": "[1, 2]",
    "bad-since": '{"since": "yesterday"}',
    "infinite": '{"host": "h", "pid": 1, "since": 1e999}',
    "nan": '{"host": "h", "pid": 1, "since": NaN}',
    "junk": "not json at all",
    "deep": "[" * 100_000 + "]" * 100_000,
    "since-400-digits": '{"host": "other", "pid": 1, "since": 1' + "0" * 400 + "}",
    "pid-infinite": f'{{"host": "{_HOST}", "pid": 1e400, "since": {time.time()}}}',
    "host-number": json.dumps({"host": 123, "pid": 1, "since": time.time()}),
    "since-text": json.dumps({"host": "other", "pid": 1, "since": str(time.time())}),
    "far-future": json.dumps({"host": "other", "pid": 1, "since": 1e18}),
    "pid-0": json.dumps({"host": _HOST, "pid": 0, "since": time.time()}),
    "pid-huge": json.dumps({"host": _HOST, "pid": 10**30, "since": time.time()}),
    "pid-bool": json.dumps({"host": _HOST, "pid": True, "since": time.time()}),
    "since-bool": json.dumps({"host": "other", "pid": 1, "since": True}),
}


@pytest.mark.parametrize("case", list(_BODIES))
def test_a_stale_or_foreign_lock_is_taken_over(aws, lake, case: str) -> None:
    """Never "unexpected error", never busy forever: a lock this code did not write, a dead
    writer's, or one whose time is more than 6 hours off (either way) is taken over."""
    bucket, root, src = lake
    body = _BODIES[case]
    if case == "dead-pid-same-host":
        body = json.dumps({"host": _HOST, "pid": _dead_pid(), "since": time.time()})
    aws.put_object(Bucket=bucket, Key="lake/_lock", Body=body.encode())
    proc = etl(src, root)
    assert proc.returncode == 0, proc.stderr
    assert "unexpected" not in proc.stderr
    assert len(reports(aws, bucket)) == 1
    listed = aws.list_objects_v2(Bucket=bucket, Prefix="lake/_lock").get("Contents", [])
    assert listed == []  # released after the run


def test_a_lock_taken_over_meanwhile_is_never_deleted_by_its_old_holder(aws, lake) -> None:
    """A writer presumed dead (it ran past 6 hours, say) must not delete its successor's lock
    when it finally ends: the release is a delete conditional on its own lock's ETag."""
    bucket, root, _ = lake
    store = S3Lake(root)
    successor = json.dumps({"host": "another-host", "pid": 7, "since": time.time()}).encode()
    with store.lock():
        aws.delete_object(Bucket=bucket, Key="lake/_lock")
        aws.put_object(Bucket=bucket, Key="lake/_lock", Body=successor)
    assert aws.get_object(Bucket=bucket, Key="lake/_lock")["Body"].read() == successor
    # and a plain release still removes one's own lock
    aws.delete_object(Bucket=bucket, Key="lake/_lock")
    with store.lock():
        assert aws.get_object(Bucket=bucket, Key="lake/_lock")["Body"].read()
    assert aws.list_objects_v2(Bucket=bucket, Prefix="lake/_lock").get("Contents", []) == []


def test_a_stale_lock_renewed_before_the_takeover_is_kept(aws, lake) -> None:
    """Two writers find the same stale lock; the first takes it over. The second's delete is
    conditional on the stale lock's ETag, so the first writer's fresh lock survives it."""
    bucket, root, _ = lake
    old = {"host": "another-host", "pid": 1, "since": time.time() - STALE_LOCK_SECONDS - 60}
    aws.put_object(Bucket=bucket, Key="lake/_lock", Body=json.dumps(old).encode())
    store = S3Lake(root)
    seen = store._stale_lock("lake/_lock")  # the second writer's view: stale
    assert seen
    fresh = json.dumps({"host": "another-host", "pid": 2, "since": time.time()}).encode()
    aws.delete_object(Bucket=bucket, Key="lake/_lock")  # the first writer's takeover
    aws.put_object(Bucket=bucket, Key="lake/_lock", Body=fresh)
    assert store._delete_lock("lake/_lock", seen) is False
    assert aws.get_object(Bucket=bucket, Key="lake/_lock")["Body"].read() == fresh
