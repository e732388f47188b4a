"""The commit boundary under a forced interleaving: member A checks it still owns its records,
member B (a real second process) claims them right then, A commits, and B reaches its commit
before A acknowledges. B must find A's batch in the lake and count none of those records again
(the ownership check alone passed for B: it did own them)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clickstream.stream.consumer import PAUSE_DIR_ENV, PAUSE_ENV
from clickstream.stream.publisher import publish
from clickstream.stream.tables import connect
from tests.stream.conftest import lake_windows, stream_windows

pytestmark = pytest.mark.stream

WAIT_S = 120  # hang guard only


def member(lake: Path, name: str, points: str, hooks: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "clickstream", "stream", "stats", "--lake", str(lake),
           "--batch-size", "5000", "--consumer", name, "--idle-exit", "1", *extra]  # fmt: skip
    env = {**os.environ, PAUSE_ENV: points, PAUSE_DIR_ENV: str(hooks)}
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)


def reached(hooks: Path, name: str, point: str, *procs: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not (hooks / f"{name}.{point}.reached").exists():
        for proc in procs:
            assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"{name} never reached {point}"
        time.sleep(0.05)


def go(hooks: Path, name: str, point: str) -> None:
    (hooks / f"{name}.{point}.go").touch()


def test_a_claim_between_ownership_check_and_commit_counts_once(make_lake, broker_dir, tmp_path):
    lake = make_lake(1500, seed=121)
    publish(str(lake))
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    a = member(lake, "A", "before_commit,after_commit", hooks)
    reached(hooks, "A", "before_commit", a)  # A owns all 1500, checked it, holds the lock
    b = member(lake, "B", "before_lock", hooks, "--claim-idle", "1s")
    reached(hooks, "B", "before_lock", a, b)  # B claimed them and computed its batch
    go(hooks, "A", "before_commit")
    reached(hooks, "A", "after_commit", a)  # A's batch is in the lake, not yet acknowledged
    go(hooks, "B", "before_lock")  # B commits now: it owns the records, A's file is there
    _, b_err = b.communicate(timeout=WAIT_S)
    assert b.returncode == 0, b_err
    assert "1,500 already committed" in b_err, b_err
    go(hooks, "A", "after_commit")
    _, a_err = a.communicate(timeout=WAIT_S)
    assert a.returncode == 0, a_err
    con = connect(str(lake))
    offsets, distinct = con.execute(
        "SELECT count(*), count(DISTINCT o) FROM "
        "(SELECT unnest(offsets) AS o FROM stream_facts WHERE kind = 'batch')"
    ).fetchone()
    assert offsets == distinct == 1500  # no offset in two batches
    assert stream_windows(lake) == lake_windows(lake)
