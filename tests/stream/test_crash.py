"""kill -9 the consumer at random moments and the publisher mid-publish: nothing lost, nothing
counted twice. Every window's page views and visitors equal the batch computation on the lake."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from clickstream.stream import broker
from clickstream.stream.consumer import FAULT_ENV
from clickstream.stream.publisher import FAULT_ENV as PUBLISH_FAULT_ENV
from clickstream.stream.publisher import publish
from clickstream.stream.tables import connect
from tests.stream.conftest import lake_windows, stream_windows

pytestmark = [pytest.mark.stream, pytest.mark.slow]


def stats_cmd(lake: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "clickstream", "stream", "stats", "--lake", str(lake),
        "--batch-size", "400", "--idle-exit", "1", "--consumer", "c1", "-q", *extra,
    ]  # fmt: skip


def run(cmd: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def assert_exact(lake: Path) -> None:
    assert stream_windows(lake) == lake_windows(lake)
    con = connect(str(lake))
    rows = (
        len(lake_windows(lake))
        and con.execute(
            "SELECT count(*) FROM read_parquet(?)", [f"{lake}/clickstream/**/*.parquet"]
        ).fetchone()[0]
    )
    events, offsets, distinct = con.execute(
        "SELECT sum(events), sum(offsets), (SELECT count(DISTINCT o) FROM "
        "(SELECT unnest(offsets) AS o FROM stream_facts WHERE kind = 'batch')) FROM stream_batches"
    ).fetchone()
    assert events == rows  # every event counted once
    assert offsets == distinct == rows  # no offset committed by two batches


def test_consumer_killed_at_random_moments(make_lake, broker_dir: Path):
    lake = make_lake(12_000, seed=11, users=400)
    publish(str(lake))
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen(stats_cmd(lake), stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.8, 3.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    result = run(stats_cmd(lake))
    assert result.returncode == 0, result.stderr
    assert kills >= 1, f"seed {seed}: the consumer finished before any kill"
    assert_exact(lake)


@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_consumer_killed_around_the_commit(make_lake, broker_dir: Path, point: str):
    lake = make_lake(2000, seed=12)
    publish(str(lake))
    killed = run(stats_cmd(lake), **{FAULT_ENV: point})
    assert killed.returncode == -signal.SIGKILL
    done = run(stats_cmd(lake))
    assert done.returncode == 0, done.stderr
    if point == "after_commit":  # the committed batch came back and was only acknowledged
        assert "400 already committed" in done.stderr
    assert_exact(lake)


def test_publisher_killed_mid_publish(make_lake, broker_dir: Path):
    lake = make_lake(25_000, seed=13, users=500)
    cmd = [sys.executable, "-m", "clickstream", "stream", "publish", "--lake", str(lake)]
    killed = run(cmd, **{PUBLISH_FAULT_ENV: "2"})  # after the 2nd chunk reached the stream
    assert killed.returncode == -signal.SIGKILL
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    assert 0 < client.xlen("clickstream") < 25_000
    done = run(cmd)
    assert done.returncode == 0, done.stderr
    assert client.xlen("clickstream") == 25_000  # nothing went out twice
    assert run(stats_cmd(lake)).returncode == 0
    assert_exact(lake)


def test_publisher_killed_in_a_run_spanning_months(tmp_path: Path, broker_dir: Path):
    from clickstream.generate import generate
    from clickstream.pipeline import EtlOptions, run_etl

    src = generate(tmp_path / "year.csv", 30_000, seed=5)  # a year: one partition per month
    lake = tmp_path / "lake"
    rows = run_etl(EtlOptions(input=str(src), lake=str(lake))).rows_written
    assert len(list((lake / "clickstream").glob("year=*/month=*"))) >= 12
    cmd = [sys.executable, "-m", "clickstream", "stream", "publish", "--lake", str(lake)]
    killed = run(cmd, **{PUBLISH_FAULT_ENV: "3"})
    assert killed.returncode == -signal.SIGKILL
    assert run(cmd).returncode == 0
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    times = [json.loads(f[b"e"])["event_time"] for _, f in client.xrange("clickstream")]
    assert len(times) == rows and len(set(times)) > 1000
    assert times == sorted(times)  # the run went out in event-time order, once
