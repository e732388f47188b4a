from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from clickstream.contract.schema import REQUIRED_INPUT_COLUMNS
from clickstream.lake.index import ID_COLUMNS
from clickstream.pipeline import EtlOptions, run_etl

HEADER = ",".join(REQUIRED_INPUT_COLUMNS)


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def write_csv(
    path: Path, lines: list[str], header: str = HEADER, newline: str = "\n", bom: bool = False
) -> Path:
    """Write a CSV from literal lines (so tests control every byte)."""
    text = newline.join([header, *lines]) + newline
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def lake_rows(
    lake: Path, table: str = "clickstream", order: str | None = None
) -> list[dict[str, Any]]:
    folder = lake / table
    order = order or ("event_id" if table == "clickstream" else "source_file, line_number")
    if not any(folder.rglob("*.parquet")):
        return []
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql(
        f"SELECT * FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = "
        f"{'true' if table == 'clickstream' else 'false'}) ORDER BY {order}"
    )
    cols = rel.columns
    return [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]


@pytest.fixture
def etl(tmp_path: Path):
    """Run the DuckDB ETL on literal CSV lines; returns (report, lake rows, rejected rows)."""

    def run(lines: list[str], **kwargs: Any):
        src = write_csv(tmp_path / "in" / "data.csv", lines)
        lake = tmp_path / "lake"
        report = run_etl(EtlOptions(input=str(src), lake=lake, full_refresh=True, **kwargs))
        return report, lake_rows(lake), lake_rows(lake, "clickstream_rejected", "line_number")

    return run


def index_matches_data(lake: Path) -> None:
    """Per partition, the index holds exactly the ids of the data files (no more, no fewer)."""
    con = duckdb.connect()
    data = con.execute(
        f"SELECT year, month, {ID_COLUMNS} FROM read_parquet('{lake}/clickstream/*/*/*.parquet', "
        "hive_partitioning = true) ORDER BY ALL"
    ).fetchall()
    index = []
    if (lake / "_index").exists():
        index = con.execute(
            f"SELECT year, month, h, l FROM read_parquet('{lake}/_index/*/*/*.parquet', "
            "hive_partitioning = true) ORDER BY ALL"
        ).fetchall()
    assert index == data
    assert len({row[2:] for row in data}) == len(data)  # and no id twice in the lake
