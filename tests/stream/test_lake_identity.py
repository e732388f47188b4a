"""A stream belongs to one lake: another lake is refused in one line (it used to publish nothing,
its entry ids colliding with the first lake's), and a checkpoint is trusted only for the stream
it describes (a deleted or recreated stream gets every run again)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from clickstream.pipeline import EtlOptions, run_etl
from clickstream.stream import broker
from clickstream.stream.publisher import publish
from tests.aws.conftest import aws, moto_endpoint  # noqa: F401  (fixtures)
from tests.conftest import write_csv
from tests.stream.conftest import dense_lines, lake_windows, stream_windows
from tests.stream.test_end_to_end import consume
from tests.stream.test_kinesis import all_records, kinesis  # noqa: F401  (fixture)

pytestmark = pytest.mark.stream


def other_lake(tmp_path: Path, rows: int, seed: int) -> Path:
    src = write_csv(tmp_path / "other" / "in.csv", dense_lines(rows, seed))
    lake = tmp_path / "other" / "lake"
    run_etl(EtlOptions(input=str(src), lake=lake))
    return lake


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "clickstream", "stream", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_a_second_lake_on_the_same_stream_is_refused(make_lake, broker_dir: Path, tmp_path):
    first = make_lake(500, seed=101)
    second = other_lake(tmp_path, 400, seed=102)  # same broker (CLICKSTREAM_BROKER_DIR)
    assert publish(str(first)).events == 500
    for args in (["publish", "--lake", str(second)], ["stats", "--lake", str(second)]):
        result = cli(*args, *(["--idle-exit", "1"] if args[0] == "stats" else []))
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "another lake" in result.stderr or "holds the events of lake" in result.stderr
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    assert client.xlen("clickstream") == 500
    assert not (second / "stream" / "consumer_group=stats").exists()
    consume(first, batch_size=200)  # the owner consumes as before
    assert stream_windows(first) == lake_windows(first)


def test_a_stream_with_entries_no_lake_published_is_refused(make_lake, broker_dir: Path):
    lake = make_lake(100, seed=103)
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker.broker_dir(str(lake)))))
    broker.ensure_running(broker_dir)
    client.xadd("clickstream", {"e": b"{}"}, id="1-0")
    result = cli("publish", "--lake", str(lake))
    assert result.returncode == 1 and "no clickstream lake published" in result.stderr
    assert client.xlen("clickstream") == 1


def test_a_deleted_stream_gets_every_run_again(make_lake, broker_dir: Path):
    lake = make_lake(600, seed=104)
    assert publish(str(lake)).events == 600
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    client.delete("clickstream")  # the stream is gone; the lake's checkpoint says "all sent"
    assert publish(str(lake)).events == 600
    assert client.xlen("clickstream") == 600
    assert publish(str(lake)).events == 0  # and once only


@pytest.mark.aws
def test_a_kinesis_stream_created_anew_under_the_same_name(make_lake, kinesis):  # noqa: F811
    client, url, name = kinesis
    lake = make_lake(300, seed=105)
    assert publish(str(lake), url).events == 300
    client.delete_stream(StreamName=name)
    time.sleep(1.1)  # another creation time
    client.create_stream(StreamName=name, ShardCount=1)
    assert publish(str(lake), url).events == 300
    assert len(all_records(client, name)) == 300
    (path,) = (lake / "stream" / "_published").glob("*.json")
    assert json.loads(path.read_text())["stream"]
