"""The stream tables through the query layer: `clickstream sql`, the catalog file and the DDL."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from clickstream.query.ddl import ddl_statements
from clickstream.query.views import STREAM_VIEW_NAMES
from clickstream.stream.consumer import ConsumerOptions, run_consumer
from clickstream.stream.publisher import publish
from tests.stream.conftest import lake_windows

pytestmark = pytest.mark.stream


def sql(lake: Path, query: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clickstream", "sql", query, "--lake", str(lake), "-f", "csv"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_stream_views_are_empty_before_any_consumer(make_lake):
    lake = make_lake(100, seed=41)
    for view in STREAM_VIEW_NAMES:
        result = sql(lake, f"SELECT count(*) AS n FROM {view}")
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["n", "0"]


def test_stream_views_through_sql_catalog_and_ddl(make_lake, broker_dir: Path, tmp_path: Path):
    lake = make_lake(1200, seed=42)
    publish(str(lake))
    run_consumer(ConsumerOptions(lake=str(lake), idle_exit=0.5, consumer="c1"))
    query = "SELECT window_start, pageviews, visitors FROM stream_windows ORDER BY window_start"
    result = sql(lake, query)
    assert result.returncode == 0, result.stderr
    got = [line.split(",") for line in result.stdout.splitlines()[1:]]
    parsed = [(datetime.fromisoformat(w), int(p), int(v)) for w, p, v in got]
    assert parsed == lake_windows(lake)
    # The same answers from the catalog file and from the DuckDB DDL.
    catalog = tmp_path / "catalog.duckdb"
    cmd = [sys.executable, "-m", "clickstream", "catalog", "--lake", str(lake)]
    subprocess.run([*cmd, "--out", str(catalog)], check=True, capture_output=True, timeout=120)
    con = duckdb.connect(str(catalog), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    assert con.execute(query).fetchall() == lake_windows(lake)
    ddl = duckdb.connect()
    ddl.execute("SET TimeZone = 'UTC'")
    for statement in ddl_statements("duckdb", str(lake)):
        ddl.execute(statement)
    assert ddl.execute(query).fetchall() == lake_windows(lake)
