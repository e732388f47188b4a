"""Publish finds a run's events however ``clickstream compact`` renamed the lake's files, and
never marks a run published having sent fewer events than the run committed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import redis

from clickstream.lake.compact import compact
from clickstream.stream import broker
from clickstream.stream.publisher import publish
from tests.stream.conftest import lake_windows, stream_windows
from tests.stream.test_end_to_end import consume

pytestmark = pytest.mark.stream


def stream_event_ids(broker_dir: Path) -> list[str]:
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    return [json.loads(f[b"e"])["event_id"] for _, f in client.xrange("clickstream")]


def checkpoint(lake: Path) -> list[tuple[int, int]]:
    (path,) = (lake / "stream" / "_published").glob("*.json")
    return [(r["events"], r["published"]) for r in json.loads(path.read_text())["runs"]]


def test_runs_compacted_before_publish_all_go_out(make_lake, broker_dir: Path):
    make_lake(900, seed=91)
    lake = make_lake(700, seed=92)  # the same month: compact merges both runs' files
    assert compact(str(lake)).partitions
    assert not list(lake.glob("clickstream/**/*_1.parquet"))
    report = publish(str(lake))
    assert (report.runs, report.events) == (2, 1600)
    ids = stream_event_ids(broker_dir)
    assert len(ids) == len(set(ids)) == 1600
    consume(lake, batch_size=400)
    assert stream_windows(lake) == lake_windows(lake)


def test_a_run_compacted_after_part_of_the_lake_went_out(make_lake, broker_dir: Path):
    lake = make_lake(500, seed=93)
    publish(str(lake))
    make_lake(600, seed=94)
    make_lake(300, seed=95)
    compact(str(lake))
    assert publish(str(lake)).events == 900
    assert checkpoint(lake) == [(500, 500), (600, 600), (300, 300)]
    ids = stream_event_ids(broker_dir)
    assert len(ids) == len(set(ids)) == 1400


def test_a_run_missing_events_is_refused_and_not_marked(make_lake, broker_dir: Path):
    make_lake(400, seed=96)
    lake = make_lake(300, seed=97)
    compact(str(lake))
    (data,) = lake.glob("clickstream/**/*.parquet")
    con = duckdb.connect()  # an outside hand drops rows of the compacted file
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{data}', hive_partitioning = false) LIMIT 650) "
        f"TO '{data}.new' (FORMAT parquet)"
    )
    Path(f"{data}.new").replace(data)
    cmd = [sys.executable, "-m", "clickstream", "stream", "publish", "--lake", str(lake)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "events" in result.stderr, result.stderr
    assert "nothing of it was published" in result.stderr
    marked = checkpoint(lake) if list((lake / "stream" / "_published").glob("*.json")) else []
    assert sum(published for _, published in marked) == len(stream_event_ids(broker_dir))
    assert not all(published == events for events, published in marked) or not marked


def test_files_that_are_not_the_lake_are_not_published(make_lake, broker_dir: Path):
    """Only the lake's files (``lake.files``) are a run's events: planted names a query also
    ignores (leading-zero month, full-width digit, a folder named like a file, junk under a
    year that is no number) neither add events nor fail the publish."""
    lake = make_lake(800, seed=97)
    (own,) = {p.name.split("_")[0] for p in lake.glob("clickstream/*/*/*.parquet")}
    month = sorted(lake.glob("clickstream/year=*/month=*"))[0]
    real = sorted(month.glob("*.parquet"))[0]
    zero = month.parent / f"month=0{month.name.split('=')[1]}"
    zero.mkdir()
    (zero / f"{own}_0.parquet").write_bytes(real.read_bytes())
    (month / f"{own}_\uff10.parquet").write_bytes(real.read_bytes())
    (month / f"{own}_9.parquet").mkdir()
    odd = lake / "clickstream" / "year=abc" / "month=3"
    odd.mkdir(parents=True)
    (odd / f"{own}_0.parquet").write_bytes(b"junk")
    report = publish(str(lake))
    assert (report.runs, report.events) == (1, 800)
    ids = stream_event_ids(broker_dir)
    assert len(ids) == len(set(ids)) == 800
