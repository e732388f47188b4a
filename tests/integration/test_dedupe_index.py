"""The event-id index (lake.index): it makes the duplicate check cheap and can never make it wrong.

Every test checks the index against the data it describes, and the dedupe outcome against what
reading the data itself gives (an index that is missing, stale or lying must not change it).
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from clickstream.generate import generate
from clickstream.lake.index import ID_COLUMNS, dedupe_sources, run_of
from clickstream.pipeline import EtlOptions, run_etl
from tests.conftest import index_matches_data, lake_rows, write_csv

JAN = "1706745599"  # 2024-01-31T23:59:59Z
FEB = "1706745600"  # 2024-02-01T00:00:00Z


def line(user: str, t: str = JAN, url: str = "https://a.com/") -> str:
    return f"{user},{url},{t},Chrome,Linux,1x1"


def etl(src: Path, lake: Path, full_refresh: bool = False):  # type: ignore[no-untyped-def]
    return run_etl(EtlOptions(input=str(src), lake=str(lake), full_refresh=full_refresh))


def test_each_run_indexes_what_it_wrote_and_later_runs_drop_repeats(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    first = etl(write_csv(tmp_path / "a.csv", [line("u1"), line("u2", FEB), line("u3")]), lake)
    assert first.rows_written == 3
    names = sorted(p.relative_to(lake / "_index").as_posix() for p in lake.rglob("_index/**/*.*"))
    assert names == [
        f"year=2024/month=1/{first.run_id}_0.parquet",
        f"year=2024/month=2/{first.run_id}_0.parquet",
    ]
    index_matches_data(lake)
    # A second file repeating two rows (one per month) and adding one: only the new row lands.
    second = etl(write_csv(tmp_path / "b.csv", [line("u2", FEB), line("u4"), line("u1")]), lake)
    assert (second.rows_read, second.rows_written, second.rows_duplicate) == (3, 1, 2)
    assert sorted(r["anonymous_user_id"] for r in lake_rows(lake)) == ["u1", "u2", "u3", "u4"]
    index_matches_data(lake)


def test_rerun_of_the_same_rows_after_a_full_refresh(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    rows = [line("u1"), line("u2", FEB)]
    etl(write_csv(tmp_path / "a.csv", [line("u0"), *rows]), lake)
    refresh = etl(write_csv(tmp_path / "b.csv", rows), lake, full_refresh=True)
    assert refresh.rows_written == 2
    index_matches_data(lake)  # the old run's index went with its data
    # The same rows again, from another file: every one is already in the lake.
    again = etl(write_csv(tmp_path / "c.csv", [*rows, line("u0")]), lake)
    assert (again.rows_written, again.rows_duplicate) == (1, 2)  # u0 was refreshed away
    index_matches_data(lake)


def test_a_lake_without_index_is_read_itself(tmp_path: Path) -> None:
    """Files from before the index (or from the Spark engine) still count as seen."""
    lake = tmp_path / "lake"
    etl(write_csv(tmp_path / "a.csv", [line("u1"), line("u2", FEB)]), lake)
    shutil.rmtree(lake / "_index")
    again = etl(write_csv(tmp_path / "b.csv", [line("u1"), line("u2", FEB), line("u3")]), lake)
    assert (again.rows_written, again.rows_duplicate) == (1, 2)
    assert len(lake_rows(lake)) == 3


def test_an_index_whose_run_has_no_data_left_is_ignored(tmp_path: Path) -> None:
    """A stale or planted index claiming new rows' ids never drops them: one under a run id
    with no data file, one under a committed run's name in a subfolder of the partition."""
    lake = tmp_path / "lake"
    first = etl(write_csv(tmp_path / "a.csv", [line("u1")]), lake)
    new = write_csv(tmp_path / "b.csv", [line("u5"), line("u6")])
    # The ids the new rows will get, under a run id that has no data file in the lake.
    ids = (
        duckdb.connect()
        .execute(
            f"SELECT {ID_COLUMNS} FROM (SELECT md5(concat_ws(chr(31), u, 'https://a.com/', "
            f"'{JAN}', 'Chrome', 'Linux', '1x1')) AS event_id FROM (VALUES ('u5'), ('u6')) v(u)) "
            "ORDER BY ALL"
        )
        .fetchall()
    )
    folder = lake / "_index" / "year=2024" / "month=1"
    table = pa.table(
        {
            "h": pa.array([h for h, _ in ids], pa.uint64()),
            "l": pa.array([x for _, x in ids], pa.uint64()),
        }
    )
    pq.write_table(table, folder / "20200101T000000Z-abcdef_0.parquet")
    (folder / "backup").mkdir()
    pq.write_table(table, folder / "backup" / f"{first.run_id}_0.parquet")
    report = etl(new, lake)
    assert (report.rows_written, report.rows_duplicate) == (2, 0)
    assert len(lake_rows(lake)) == 3
    # The planted ids were the new rows' ids (so the index really claimed them).
    landed = (
        duckdb.connect()
        .execute(
            f"SELECT {ID_COLUMNS} FROM read_parquet("
            f"'{lake}/clickstream/*/*/{report.run_id}_*.parquet') ORDER BY ALL"
        )
        .fetchall()
    )
    assert landed == ids


def test_many_runs_of_overlapping_generated_data(tmp_path: Path) -> None:
    """Random overlaps between runs: the lake ends with each distinct row exactly once."""
    lake = tmp_path / "lake"
    big = generate(tmp_path / "big.csv", 3_000, seed=7, bad_fraction=0.02)
    # Whole records (a quoted field may hold a newline), each rendered back as one CSV record.
    with open(big, newline="") as fh:
        records = list(csv.reader(fh))
    rendered = []
    for record in records:
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(record)
        rendered.append(out.getvalue())
    header, body = rendered[0], rendered[1:]
    chunks = [body[0:1200], body[800:2000], body[1500:3000], body[0:3000:7]]
    written = 0
    for i, chunk in enumerate(chunks):
        src = write_csv(tmp_path / f"part{i}.csv", chunk, header=header)
        report = etl(src, lake)
        written += report.rows_written
        index_matches_data(lake)
    clean = tmp_path / "clean"
    etl(big, clean)
    assert written == len(lake_rows(lake)) == len(lake_rows(clean))
    assert {r["event_id"] for r in lake_rows(lake)} == {r["event_id"] for r in lake_rows(clean)}


def test_dedupe_sources_trusts_an_index_only_for_runs_with_data() -> None:
    a, b, c = "20240101T000000Z-aaaaaa", "20240102T000000Z-bbbbbb", "20230101T000000Z-cccccc"
    data = [f"p/{a}_0.parquet", f"p/{a}_1.parquet", f"p/{b}_0.parquet", "p/stray.parquet"]
    index = [f"i/{a}_0.parquet", f"i/{c}_0.parquet", "i/junk.parquet"]
    use_index, read_whole = dedupe_sources(data, index)
    assert use_index == [f"i/{a}_0.parquet"]
    assert read_whole == [f"p/{b}_0.parquet", "p/stray.parquet"]
    assert run_of(f"x/{a}_12.parquet") == a and run_of(f"{a}.parquet") is None
