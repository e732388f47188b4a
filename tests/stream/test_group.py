"""Consumer groups: takeover of a dead member's records, a slow member losing its claim, several
members together, and malformed records going to the dead letters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import redis

from clickstream.stream import broker
from clickstream.stream.consumer import Consumer, ConsumerOptions, run_consumer
from clickstream.stream.publisher import publish
from clickstream.stream.records import REASONS
from clickstream.stream.tables import connect
from tests.stream.conftest import lake_windows, stream_windows

pytestmark = pytest.mark.stream


def options(lake: Path, consumer: str, **kwargs) -> ConsumerOptions:
    base = dict(lake=str(lake), consumer=consumer, idle_exit=1.0, batch_size=300)
    base.update(kwargs)
    return ConsumerOptions(**base)


def test_records_of_a_dead_consumer_are_taken_over(make_lake, broker_dir: Path):
    lake = make_lake(2000, seed=21)
    publish(str(lake))
    dead = Consumer(options(lake, "dead"))
    dead.transport.ensure_group("stats")
    taken = dead.transport.read("stats", "dead", 700, 0)  # read, never acknowledged: then "dies"
    assert len(taken) == 700
    report = run_consumer(options(lake, "alive", claim_idle_ms=200, idle_exit=2.0))
    assert report.events == 2000
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    assert client.xpending("clickstream", "stats")["pending"] == 0
    assert stream_windows(lake) == lake_windows(lake)


def test_a_slow_consumer_whose_records_were_claimed_commits_nothing(make_lake, broker_dir: Path):
    lake = make_lake(1200, seed=22)
    publish(str(lake))
    slow = Consumer(options(lake, "slow", batch_size=500))
    slow.transport.ensure_group("stats")
    entries = slow.transport.read("stats", "slow", 500, 0)
    # Meanwhile another member decides "slow" is dead and takes its records (idle >= 0 ms).
    run_consumer(options(lake, "fast", claim_idle_ms=0, idle_exit=1.0))
    slow._process(entries, redelivered=False, on_batch=None)  # it wakes up and tries to commit
    assert slow.report.batches == 0
    assert stream_windows(lake) == lake_windows(lake)


def test_several_consumers_together_equal_one(make_lake, broker_dir: Path):
    lake = make_lake(8000, seed=23, users=300)
    publish(str(lake))
    cmd = [sys.executable, "-m", "clickstream", "stream", "stats", "--lake", str(lake),
           "--batch-size", "200", "--idle-exit", "2", "-q"]  # fmt: skip
    procs = [
        subprocess.Popen([*cmd, "--consumer", f"m{i}"], stderr=subprocess.PIPE, text=True)
        for i in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    con = connect(str(lake))
    per_consumer = dict(
        con.execute("SELECT consumer, sum(events) FROM stream_batches GROUP BY 1").fetchall()
    )
    assert sum(per_consumer.values()) == 8000
    assert len([n for n in per_consumer.values() if n > 0]) >= 2  # the work was split
    together = stream_windows(lake)
    # One consumer in another group over the same stream computes the same windows.
    run_consumer(options(lake, "solo", group="solo", batch_size=1000))
    assert stream_windows(lake, "solo") == together == lake_windows(lake)


BAD = {
    "not_utf8": b"\xff\xfe{}",
    "not_json": b'{"v": 1, "event_id": ',
    "not_an_object": b"[1, 2, 3]",
    "wrong_schema_version": json.dumps({"v": 2, "event_id": "x"}).encode(),
    "missing_event_id": json.dumps(
        {"v": 1, "anonymous_user_id": "u", "event_time": "2024-03-01T00:00:00.000000Z"}
    ).encode(),
    "missing_anonymous_user_id": json.dumps(
        {
            "v": 1,
            "event_id": "e1",
            "anonymous_user_id": "",
            "event_time": "2024-03-01T00:00:00.000000Z",
        }
    ).encode(),
    "bad_event_time": json.dumps(
        {"v": 1, "event_id": "e2", "anonymous_user_id": "u", "event_time": "2024-03-01 00:00:00"}
    ).encode(),
    "event_time_out_of_range": json.dumps(
        {
            "v": 1,
            "event_id": "e4",
            "anonymous_user_id": "u",
            "event_time": "2100-01-01T00:00:00.000000Z",
        }
    ).encode(),
}


def test_malformed_records_go_to_the_dead_letters(make_lake, broker_dir: Path):
    lake = make_lake(600, seed=24)
    publish(str(lake))
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    for payload in BAD.values():
        client.xadd("clickstream", {"e": payload})
    client.xadd("clickstream", {"other": b"x"})  # no 'e' field
    client.xadd("clickstream", {"e": json.dumps({"v": "1", "event_id": "e3"}).encode()})
    report = run_consumer(options(lake, "c1"))
    assert report.events == 600 and report.dead_letters == len(BAD) + 2
    con = connect(str(lake))
    got = con.execute("SELECT reason, count(*) FROM stream_dead_letters GROUP BY 1").fetchall()
    expected = {**{reason: 1 for reason in BAD}, "missing_payload": 1}
    expected["wrong_schema_version"] += 1  # "v": "1" is a string, not the integer 1
    assert dict(got) == expected
    assert set(expected) == {r for r, _ in REASONS}
    assert stream_windows(lake) == lake_windows(lake)


def test_a_window_of_another_size_needs_another_group(make_lake, broker_dir: Path):
    from clickstream.errors import StreamError

    lake = make_lake(300, seed=25)
    publish(str(lake))
    run_consumer(options(lake, "c1"))
    with pytest.raises(StreamError, match="--window 60s"):
        Consumer(options(lake, "c2", window_seconds=300)).run()
    cmd = [sys.executable, "-m", "clickstream", "stream", "stats", "--lake", str(lake)]
    result = subprocess.run(
        [*cmd, "--window", "7m"], capture_output=True, text=True, env={**os.environ}, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "must divide 30 minutes" in result.stderr


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00.000000Z"])
def test_an_event_time_outside_the_lake_bounds_never_moves_the_watermark(
    make_lake, broker_dir: Path, when: str
):
    from datetime import timedelta

    lake = make_lake(600, seed=26)
    publish(str(lake))
    lake_max = duckdb.sql(
        f"SELECT max(event_time) FROM read_parquet('{lake}/clickstream/**/*.parquet')"
    ).fetchone()[0]
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    far = json.dumps({"v": 1, "event_id": "far", "anonymous_user_id": "u", "event_time": when})
    client.xadd("clickstream", {"e": far.encode()})
    # Valid events after it, newer than the lake: never late, however far the bad time is.
    after = lake_max.replace(second=0, microsecond=0) + timedelta(minutes=2)
    for i in range(5):
        ok = {"v": 1, "event_id": f"ok{i}", "anonymous_user_id": "v",
              "event_time": after.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}  # fmt: skip
        client.xadd("clickstream", {"e": json.dumps(ok).encode()})
    report = run_consumer(options(lake, "c1", batch_size=1000))
    assert report.dead_letters == 1 and report.late_events == 0
    con = connect(str(lake))
    dead = con.execute("SELECT reason, payload FROM stream_dead_letters").fetchall()
    assert dead == [("event_time_out_of_range", far)]
    newest = con.execute("SELECT max(max_event_time) FROM stream_batches").fetchone()[0]
    assert newest == after
    assert stream_windows(lake) == [*lake_windows(lake), (after, 5, 1)]
