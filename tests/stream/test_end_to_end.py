"""Publish a lake, consume it into statistics, and compare with the batch computation."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import redis

from clickstream.stream import broker
from clickstream.stream.consumer import ConsumerOptions, run_consumer
from clickstream.stream.publisher import publish
from clickstream.stream.tables import connect
from tests.stream.conftest import T0, lake_windows, stream_windows

pytestmark = pytest.mark.stream


def consume(lake: Path, **kwargs) -> object:
    options = dict(lake=str(lake), idle_exit=0.5, consumer="c1", claim_idle_ms=60_000)
    options.update(kwargs)
    return run_consumer(ConsumerOptions(**options))


def test_windows_equal_the_batch_computation(make_lake, broker_dir: Path):
    lake = make_lake(4000, seed=1)
    assert publish(str(lake)).events == 4000
    report = consume(lake, batch_size=333)
    assert report.events == 4000 and report.dead_letters == 0
    assert stream_windows(lake) == lake_windows(lake)
    # Batch rows account for every record, once.
    con = connect(str(lake))
    assert con.execute(
        "SELECT sum(records), sum(events), count(*) FROM stream_batches"
    ).fetchone() == (
        4000,
        4000,
        report.batches,
    )


def test_sessions_started_match_the_sessions_view(make_lake, broker_dir: Path):
    from clickstream.query.views import view_sql

    lake = make_lake(3000, seed=2, hours=6, users=40)  # few visitors: gaps over 30 min happen
    publish(str(lake))
    consume(lake, batch_size=250)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"CREATE VIEW clickstream AS SELECT * FROM read_parquet('{lake}/clickstream/**/*.parquet')"
    )
    con.execute(f"CREATE VIEW sessions AS {view_sql('sessions')}")
    expected = con.execute(
        "SELECT time_bucket(INTERVAL 1 MINUTE, session_start) AS w, count(*) FROM sessions "
        "GROUP BY w ORDER BY w"
    ).fetchall()
    got = (
        connect(str(lake))
        .execute(
            "SELECT window_start, sessions_started FROM stream_windows WHERE sessions_started > 0 "
            "ORDER BY window_start"
        )
        .fetchall()
    )
    assert got == expected
    assert sum(n for _, n in got) > 40  # visitors came back after a break


def test_a_plain_redis_client_reads_the_records(make_lake, broker_dir: Path):
    lake = make_lake(500, seed=3)
    publish(str(lake))
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    entries = client.xrange("clickstream")
    assert len(entries) == 500
    records = [json.loads(fields[b"e"]) for _, fields in entries]
    assert {r["v"] for r in records} == {1}
    times = [r["event_time"] for r in records]
    assert times == sorted(times)  # one run, event-time order
    assert all(len(t) == len("2024-03-01T00:00:00.000000Z") and t.endswith("Z") for t in times)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    lake_rows = con.execute(
        f"SELECT event_id, anonymous_user_id, strftime(event_time, '%Y-%m-%dT%H:%M:%S.%fZ'), url, "
        f"utm_source FROM read_parquet('{lake}/clickstream/**/*.parquet') ORDER BY event_id"
    ).fetchall()
    wire = sorted(
        (r["event_id"], r["anonymous_user_id"], r["event_time"], r["url"], r["utm_source"])
        for r in records
    )
    assert wire == lake_rows


def test_publishing_again_sends_only_new_runs(make_lake, broker_dir: Path):
    lake = make_lake(800, seed=4)
    assert publish(str(lake)).events == 800
    assert publish(str(lake)).events == 0
    make_lake(300, seed=5, start=T0 + 86400)
    assert publish(str(lake)).events == 300
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    assert client.xlen("clickstream") == 1100
    consume(lake)
    assert stream_windows(lake) == lake_windows(lake)


def test_late_events_are_listed_and_still_counted(make_lake, broker_dir: Path):
    lake = make_lake(1000, seed=6, start=T0 + 5 * 3600)
    publish(str(lake))
    consume(lake)
    make_lake(200, seed=7, start=T0, hours=1)  # a later run with events hours older
    publish(str(lake))
    report = consume(lake, consumer="c2")
    assert report.late_events == 200
    con = connect(str(lake))
    late = con.execute("SELECT count(*), min(seconds_behind) FROM stream_late").fetchone()
    assert late[0] == 200 and late[1] > 3600
    assert stream_windows(lake) == lake_windows(lake)


def test_sketches_roll_up_to_days(make_lake, broker_dir: Path):
    from clickstream.stream.rollup import rollup

    lake = make_lake(6000, seed=9, hours=60, users=2500)
    publish(str(lake))
    consume(lake, batch_size=700)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    exact = con.execute(
        f"SELECT time_bucket(INTERVAL 1 DAY, event_time) AS d, count(*), "
        f"count(DISTINCT anonymous_user_id) FROM read_parquet('{lake}/clickstream/**/*.parquet') "
        "GROUP BY d ORDER BY d"
    ).fetchall()
    days = rollup(str(lake), "day")
    assert [(d.start, d.pageviews) for d in days] == [(d, n) for d, n, _ in exact]
    for day, (_, _, visitors) in zip(days, exact, strict=True):
        assert abs(day.visitors_estimate - visitors) <= 0.05 * visitors  # ~3 standard errors
