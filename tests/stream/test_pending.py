"""Records left pending by a killed member: taken over with XAUTOCLAIM from its cursor, entries
deleted while pending become dead letters, and a restart with --idle-exit waits for them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from clickstream.stream import broker
from clickstream.stream.consumer import FAULT_ENV
from clickstream.stream.publisher import publish
from clickstream.stream.tables import connect
from clickstream.stream.transports import open_transport
from tests.stream.conftest import lake_windows, stream_windows

pytestmark = pytest.mark.stream


def stats(lake: Path, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "clickstream", "stream", "stats", "--lake", str(lake),
           "--batch-size", "5000", "--idle-exit", "1", *extra]  # fmt: skip
    return subprocess.run(
        cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def killed_holding_everything(lake: Path) -> None:
    """A member reads every record in one batch and is SIGKILLed before its commit."""
    dead = stats(lake, "--consumer", "dead", **{FAULT_ENV: "before_commit"})
    assert dead.returncode == -signal.SIGKILL, dead.stderr


def test_a_restart_under_another_name_waits_for_a_dead_members_records(make_lake, broker_dir):
    lake = make_lake(3000, seed=81)
    publish(str(lake))
    killed_holding_everything(lake)
    # A fresh process (another consumer name): nothing new to read, all 3000 pending for "dead".
    done = stats(lake, "--claim-idle", "2s")
    assert done.returncode == 0, done.stderr
    assert "3000 records are pending for other consumers" in done.stderr
    assert stream_windows(lake) == lake_windows(lake)
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    assert client.xpending("clickstream", "stats")["pending"] == 0


def test_records_deleted_while_pending_become_dead_letters(make_lake, broker_dir):
    lake = make_lake(1000, seed=82)
    publish(str(lake))
    killed_holding_everything(lake)
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    gone = [entry_id.decode() for entry_id, _ in client.xrange("clickstream", count=1000)[::200]]
    assert client.xdel("clickstream", *gone) == 5
    done = stats(lake, "--claim-idle", "1s")
    assert done.returncode == 0, done.stderr
    assert client.xpending("clickstream", "stats")["pending"] == 0  # none left pending forever
    con = connect(str(lake))
    dead = con.execute("SELECT stream_id, reason FROM stream_dead_letters ORDER BY 1").fetchall()
    assert sorted(dead) == sorted((i, "missing_payload") for i in gone)
    assert con.execute("SELECT sum(pageviews) FROM stream_windows").fetchone()[0] == 995


def test_claims_go_on_from_the_servers_cursor(make_lake, broker_dir):
    lake = make_lake(6, seed=83)
    publish(str(lake))
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    client.xgroup_create("clickstream", "g", id="0")
    ids = [i.decode() for i, _ in client.xrange("clickstream")]
    client.xreadgroup("g", "dead", {"clickstream": ">"})
    transport = open_transport(None, str(lake))
    try:
        # min_idle 0: a claim that restarted from 0-0 would take back the same two each time.
        got = [transport.claim("g", "me", 0, 2).ids for _ in range(3)]
    finally:
        transport.close()
    assert got == [ids[0:2], ids[2:4], ids[4:6]]
