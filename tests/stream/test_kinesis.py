"""kinesis://: publish and consume through a moto server on 127.0.0.1 (real HTTP, real boto3)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clickstream.stream.consumer import ConsumerOptions, run_consumer
from clickstream.stream.publisher import FAULT_ENV, publish
from clickstream.stream.tables import connect
from tests.aws.conftest import aws, moto_endpoint  # noqa: F401  (fixtures)
from tests.stream.conftest import lake_windows, stream_windows

pytestmark = [pytest.mark.stream, pytest.mark.aws]

URL = "kinesis://events"


@pytest.fixture
def kinesis(aws):  # noqa: F811
    import boto3

    client = boto3.client("kinesis")
    name = f"events-{random.randrange(1 << 30)}"
    client.create_stream(StreamName=name, ShardCount=2)
    yield client, f"kinesis://{name}", name
    client.delete_stream(StreamName=name)


def all_records(client, name: str) -> list[tuple[str, dict]]:
    """What a plain boto3 consumer sees: (shard, record) for every record of every shard."""
    out = []
    for shard in client.list_shards(StreamName=name)["Shards"]:
        it = client.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            reply = client.get_records(ShardIterator=it, Limit=10_000)
            out += [(shard["ShardId"], json.loads(r["Data"])) for r in reply["Records"]]
            if not reply["Records"]:
                break
            it = reply.get("NextShardIterator")
    return out


def test_publish_and_consume_on_kinesis(make_lake, kinesis):
    client, url, name = kinesis
    lake = make_lake(1500, seed=71)
    assert publish(str(lake), url).events == 1500
    records = all_records(client, name)
    assert len(records) == 1500 and {r["v"] for _, r in records} == {1}
    # Partition key = visitor: one visitor's events are in one shard, in event-time order.
    by_user: dict[str, list[tuple[str, str]]] = {}
    for shard, r in records:
        by_user.setdefault(r["anonymous_user_id"], []).append((shard, r["event_time"]))
    for events in by_user.values():
        assert len({s for s, _ in events}) == 1
        assert [t for _, t in events] == sorted(t for _, t in events)
    report = run_consumer(ConsumerOptions(lake=str(lake), url=url, idle_exit=1.5, consumer="k1"))
    assert report.events == 1500
    assert stream_windows(lake) == lake_windows(lake)
    # A restart finds nothing new: the lake is the checkpoint.
    again = run_consumer(ConsumerOptions(lake=str(lake), url=url, idle_exit=1.5, consumer="k1"))
    assert again.events == 0


def stats_cmd(lake: Path, url: str, consumer: str) -> list[str]:
    return [
        sys.executable, "-m", "clickstream", "stream", "stats", "--lake", str(lake), "--from", url,
        "--batch-size", "300", "--idle-exit", "2", "--consumer", consumer, "-q",
    ]  # fmt: skip


def test_kinesis_consumer_killed_and_publisher_killed(make_lake, kinesis):
    client, url, name = kinesis
    lake = make_lake(12_000, seed=72, users=400)
    pub = [sys.executable, "-m", "clickstream", "stream", "publish", "--lake", str(lake),
           "--to", url]  # fmt: skip
    killed = subprocess.run(pub, env={**__import__("os").environ, FAULT_ENV: "1"}, timeout=300)
    assert killed.returncode == -signal.SIGKILL  # the first chunk is out, not checkpointed
    assert subprocess.run(pub, capture_output=True, timeout=300).returncode == 0
    assert len(all_records(client, name)) == 12_000  # the unfinished chunk was not sent twice
    rnd = random.Random()
    for _ in range(2):
        proc = subprocess.Popen(stats_cmd(lake, url, "k1"), stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(2.0, 5.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    done = subprocess.run(stats_cmd(lake, url, "k1"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert stream_windows(lake) == lake_windows(lake)
    con = connect(str(lake))
    assert con.execute("SELECT sum(events) FROM stream_batches").fetchone()[0] == 12_000


def test_two_kinesis_consumers_together_count_everything_once(make_lake, kinesis):
    _, url, _ = kinesis
    lake = make_lake(3000, seed=73)
    publish(str(lake), url)
    procs = [
        subprocess.Popen(stats_cmd(lake, url, f"m{i}"), stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    con = connect(str(lake))
    per = dict(
        con.execute("SELECT consumer, sum(events) FROM stream_batches GROUP BY 1").fetchall()
    )
    assert sum(per.values()) == 3000
    assert stream_windows(lake) == lake_windows(lake)
