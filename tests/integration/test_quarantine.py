"""Quarantine: one row per (file, record) across reruns; long records cut with a visible mark."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream.contract.rules import RAW_CUT_MARK, RAW_LINE_MAX_CHARS
from clickstream.pipeline import EtlOptions, run_etl
from tests.conftest import lake_rows, write_csv

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


def good(i: int) -> str:
    return f"u{i},https://a.com/p{i},{1_706_745_600 + i},Chrome,Linux,1x1"


def bad(i: int) -> str:
    # Alternating rule rejects and reader rejects (too many fields).
    if i % 2:
        return f"u{i},https://a.com/p{i},not-a-time,Chrome,Linux,1x1"
    return f"u{i},https://a.com/p{i},{1_706_745_600 + i},Chrome,Linux,1x1,surplus"


def lines(n: int) -> list[str]:
    return [bad(i) if i % 10 == 0 else good(i) for i in range(n)]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_grown_file_is_reread_without_duplicating_its_quarantine(
    tmp_path: Path, engine: str
) -> None:
    src = tmp_path / "in" / "grow.csv"
    lake = str(tmp_path / "lake")
    write_csv(src, lines(100))
    first = run_etl(EtlOptions(input=str(src), lake=lake, engine=engine))
    assert (first.rows_rejected, first.rows_written) == (10, 90)
    write_csv(src, lines(300))  # the same 100 records, then 200 more
    second = run_etl(EtlOptions(input=str(src), lake=lake, engine=engine))
    assert second.rows_read == 300
    # The first 100 records are all in the lake already: kept (90) or quarantined (10).
    assert (second.rows_written, second.rows_rejected, second.rows_duplicate) == (180, 20, 100)
    rejected = lake_rows(tmp_path / "lake", "clickstream_rejected")
    keys = [(r["source_file"], r["line_number"]) for r in rejected]
    assert len(keys) == len(set(keys)) == 30
    assert sorted(n for _, n in keys) == [i + 2 for i in range(0, 300, 10)]
    assert len(lake_rows(tmp_path / "lake")) == 270


@pytest.mark.parametrize("engine", ENGINES)
def test_a_changed_record_at_the_same_line_is_quarantined_again(
    tmp_path: Path, engine: str
) -> None:
    src = tmp_path / "in" / "edit.csv"
    lake = str(tmp_path / "lake")
    write_csv(src, [good(1), bad(3)])
    run_etl(EtlOptions(input=str(src), lake=lake, engine=engine))
    write_csv(src, [good(1), bad(5), good(7)])
    report = run_etl(EtlOptions(input=str(src), lake=lake, engine=engine))
    assert (report.rows_rejected, report.rows_duplicate, report.rows_written) == (1, 1, 1)
    raws = sorted(r["raw_line"] for r in lake_rows(tmp_path / "lake", "clickstream_rejected"))
    assert raws == [bad(3), bad(5)]


@pytest.mark.parametrize("engine", ENGINES)
def test_long_raw_lines_are_cut_with_a_visible_mark(tmp_path: Path, engine: str) -> None:
    long_url = "https://a.com/?q=" + "x" * 30_000
    src = write_csv(
        tmp_path / "long.csv",
        [
            f"r1,{long_url},not-a-time,Chrome,Linux,1x1",  # rule reject
            f"r2,{long_url},1706745600,Chrome,Linux,1x1,surplus",  # reader reject
            "r3,https://a.com/,not-a-time,Chrome,Linux,1x1",  # short: untouched
        ],
    )
    run_etl(EtlOptions(input=str(src), lake=str(tmp_path / "lake"), engine=engine))
    rows = lake_rows(tmp_path / "lake", "clickstream_rejected")
    cut = [r["raw_line"] for r in rows[:2]]
    for raw in cut:
        assert raw.endswith(RAW_CUT_MARK)
        assert len(raw) == RAW_LINE_MAX_CHARS + len(RAW_CUT_MARK)
    assert [raw[:3] for raw in cut] == ["r1,", "r2,"]
    assert rows[2]["raw_line"] == "r3,https://a.com/,not-a-time,Chrome,Linux,1x1"
