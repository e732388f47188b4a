"""The publisher's memory in the lake (validated on read), --follow, and clean shutdowns."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from clickstream.errors import StreamError
from clickstream.stream import broker
from clickstream.stream.publisher import checkpoint_path, load_checkpoint, publish
from clickstream.stream.tables import StreamLayout
from tests.stream.conftest import T0, lake_windows, stream_windows

pytestmark = pytest.mark.stream


def the_checkpoint(lake: Path) -> Path:
    files = list((lake / "stream" / "_published").glob("*.json"))
    assert len(files) == 1
    return files[0]


def test_the_checkpoint_says_what_went_out(make_lake, broker_dir: Path):
    lake = make_lake(700, seed=61)
    publish(str(lake))
    data = json.loads(the_checkpoint(lake).read_text())
    assert data["version"] == 1 and data["target"].startswith("embedded broker")
    assert [(r["seq"], r["events"], r["published"]) for r in data["runs"]] == [(1, 700, 700)]
    path = checkpoint_path(StreamLayout(str(lake.absolute())), data["target"])
    assert path == the_checkpoint(lake)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d.update(version=2),
        lambda d: d["runs"][0].update(published=10_000),  # more than the run holds
        lambda d: d["runs"][0].update(seq=5),  # out of sequence
        lambda d: d["runs"][0].update(events="700"),
        lambda d: d["runs"].append(dict(d["runs"][0], seq=2)),  # the same run twice
        lambda d: d["runs"][0].update(extra=1),
    ],
)
def test_a_tampered_checkpoint_is_refused(make_lake, broker_dir: Path, tamper):
    lake = make_lake(200, seed=62)
    publish(str(lake))
    path = the_checkpoint(lake)
    data = json.loads(path.read_text())
    tamper(data)
    path.write_text(json.dumps(data))
    with pytest.raises(StreamError, match="invalid publish checkpoint"):
        load_checkpoint(path, data["target"])
    cmd = [sys.executable, "-m", "clickstream", "stream", "publish", "--lake", str(lake)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "invalid publish checkpoint" in result.stderr


def test_follow_publishes_each_new_run_and_stops_cleanly(make_lake, broker_dir: Path):
    lake = make_lake(300, seed=63)
    cmd = [sys.executable, "-m", "clickstream", "stream", "publish", "--lake", str(lake),
           "--follow", "--poll", "0.2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))

    def wait_for(n: int) -> None:
        for _ in range(600):
            if client.exists("clickstream") and client.xlen("clickstream") == n:
                return
            time.sleep(0.1)
        raise AssertionError(f"the stream never reached {n} records")

    wait_for(300)
    make_lake(250, seed=64, start=T0 + 86400)
    wait_for(550)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "published 550 events from 2 run(s)" in err


def test_sigterm_stops_the_consumer_after_its_batch_nothing_lost(make_lake, broker_dir: Path):
    lake = make_lake(6000, seed=65)
    publish(str(lake))
    cmd = [sys.executable, "-m", "clickstream", "stream", "stats", "--lake", str(lake),
           "--batch-size", "300", "--consumer", "c1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    assert client.xpending("clickstream", "stats")["pending"] == 0  # what it read, it committed
    done = subprocess.run([*cmd, "--idle-exit", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert stream_windows(lake) == lake_windows(lake)
