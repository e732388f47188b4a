"""A file dropped into a consumer group's folder that is not a batch file (garbage bytes, a
Parquet file of another shape, a stray name) is skipped with a warning: `clickstream sql`, the
live views and the consumer keep working (it used to break every `clickstream sql`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from clickstream.stream.publisher import publish
from tests.stream.conftest import lake_windows, stream_windows
from tests.stream.test_end_to_end import consume

pytestmark = pytest.mark.stream


def plant_garbage(lake: Path) -> list[Path]:
    group = lake / "stream" / "consumer_group=stats"
    other = lake / "stream" / "consumer_group=other"
    other.mkdir(parents=True)
    planted = [
        group / "20240101T000000000000-c9-1.parquet",  # named like a batch, garbage bytes
        group / "20240101T000000000000-c9-2.parquet",  # a Parquet file of another shape
        group / "stray.parquet",
        other / "20240101T000000000000-c9-3.parquet",  # right columns, wrong types
    ]
    planted[0].write_bytes(b"PAR1 this is not parquet PAR1")
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 42 AS kind, 'x' AS batch_id) TO '{planted[1]}' (FORMAT parquet)")
    con.execute(f"COPY (SELECT 1 AS x) TO '{planted[2]}' (FORMAT parquet)")
    con.execute(
        "COPY (SELECT 'batch' AS kind, 'b' AS batch_id, 7 AS offsets, 'x' AS window_start) "
        f"TO '{planted[3]}' (FORMAT parquet)"
    )
    return planted


def test_garbage_in_a_group_folder_is_skipped_with_a_warning(make_lake, broker_dir: Path):
    lake = make_lake(1500, seed=71)
    publish(str(lake))
    consume(lake, batch_size=400)
    planted = plant_garbage(lake)
    query = "SELECT sum(pageviews) AS n FROM stream_windows WHERE consumer_group = 'stats'"
    cmd = [sys.executable, "-m", "clickstream", "sql", "--lake", str(lake), "--format", "csv"]
    result = subprocess.run([*cmd, query], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["n", "1500"]
    for path in planted:  # each named in one warning line, none moved (readers never write)
        assert sum(path.name in line for line in result.stderr.splitlines()) == 1, result.stderr
        assert path.exists()
    # The consumer goes on past them too: a second run adds the new run's events exactly.
    make_lake(700, seed=72)
    publish(str(lake))
    consume(lake, batch_size=400)
    assert stream_windows(lake) == lake_windows(lake)


def test_a_symlinked_batch_file_is_never_opened(make_lake, broker_dir: Path, tmp_path: Path):
    lake = make_lake(300, seed=73)
    publish(str(lake))
    consume(lake, batch_size=400)
    (real,) = (lake / "stream" / "consumer_group=stats").glob("*.parquet")
    outside = tmp_path / "outside.parquet"
    outside.write_bytes(real.read_bytes())  # a valid batch file, outside the lake
    (real.parent / "20240101T000000000000-c9-9.parquet").symlink_to(outside)
    from clickstream.stream.tables import connect

    con = connect(str(lake))
    assert con.execute("SELECT sum(pageviews) FROM stream_windows").fetchone()[0] == 300


def test_the_catalog_file_and_the_duckdb_ddl_leave_garbage_out(
    make_lake, broker_dir: Path, tmp_path: Path
):
    lake = make_lake(900, seed=73)
    publish(str(lake))
    consume(lake, batch_size=400)
    plant_garbage(lake)
    out = tmp_path / "catalog.duckdb"
    cmd = [sys.executable, "-m", "clickstream"]
    made = subprocess.run(
        [*cmd, "catalog", "--lake", str(lake), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    query = "SELECT sum(pageviews) FROM stream_windows WHERE consumer_group = 'stats'"
    with duckdb.connect(str(out), read_only=True) as con:
        assert con.execute(query).fetchone() == (900,)
    ddl = subprocess.run(
        [*cmd, "ddl", "--dialect", "duckdb", "--lake", str(lake)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ddl.returncode == 0, ddl.stderr
    con = duckdb.connect()
    for statement in ddl.stdout.split(";\n"):
        if statement.strip():
            con.execute(statement)
    assert con.execute(query).fetchone() == (900,)
