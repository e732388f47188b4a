"""The lake's guarantees: layout, reconciliation, idempotent reruns, full refresh, dedupe."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from clickstream.errors import LakeError, MissingColumnError
from clickstream.lake.commit import lake_lock
from clickstream.lake.layout import LakeLayout
from clickstream.pipeline import EtlOptions, run_etl
from tests.conftest import lake_rows, write_csv

JAN31 = "1706745599"  # 2024-01-31T23:59:59Z
FEB01 = "1706745600"


def line(user: str, t: str = JAN31, url: str = "https://a.com/") -> str:
    return f"{user},{url},{t},Chrome,Linux,1x1"


def test_layout_hive_partitions_zstd_and_report(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", [line("u1"), line("u2", FEB01), line("u3", "bad")])
    lake = tmp_path / "lake"
    report = run_etl(EtlOptions(input=str(src), lake=lake))
    files = sorted(
        p.relative_to(lake).as_posix() for p in (lake / "clickstream").rglob("*.parquet")
    )
    assert [f.rsplit("/", 1)[0] for f in files] == [
        "clickstream/year=2024/month=1",
        "clickstream/year=2024/month=2",
    ]
    meta = pq.ParquetFile(lake / files[0]).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    saved = json.loads((lake / "_runs" / f"{report.run_id}.json").read_text())
    for key in (
        "run_id",
        "input_files",
        "rows_read",
        "rows_written",
        "rows_rejected",
        "rejected_by_reason",
        "rows_duplicate",
        "partitions",
        "seconds",
        "rows_per_second",
    ):
        assert key in saved
    assert saved["rows_read"] == 3 and saved["rows_written"] == 2
    assert saved["rejected_by_reason"] == {"invalid_time": 1}
    assert saved["partitions"] == [
        {"year": 2024, "month": 1, "rows": 1},
        {"year": 2024, "month": 2, "rows": 1},
    ]
    assert not (lake / "_staging").exists() or not any((lake / "_staging").iterdir())


def test_rerun_skips_ingested_files_and_picks_up_new_or_changed(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    a = write_csv(folder / "a.csv", [line("u1"), line("u2")])
    lake = tmp_path / "lake"
    run_etl(EtlOptions(input=str(folder), lake=lake))
    again = run_etl(EtlOptions(input=str(folder), lake=lake))
    assert again.input_files == [] and again.skipped_files == [str(a.resolve())]
    write_csv(folder / "b.csv.gz", [line("u3")])
    third = run_etl(EtlOptions(input=str(folder), lake=lake))
    assert [f.path for f in third.input_files] == [str((folder / "b.csv.gz").resolve())]
    assert len(lake_rows(lake)) == 3
    # A changed file is new input; rows already in the lake count as duplicates, not twice.
    write_csv(a, [line("u1"), line("u2"), line("u4")])
    os.utime(a, ns=(1, 1))
    fourth = run_etl(EtlOptions(input=str(folder), lake=lake))
    assert (fourth.rows_read, fourth.rows_written, fourth.rows_duplicate) == (3, 1, 2)
    assert sorted(r["anonymous_user_id"] for r in lake_rows(lake)) == ["u1", "u2", "u3", "u4"]


def test_full_refresh_rebuilds_from_scratch(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    run_etl(
        EtlOptions(
            input=str(write_csv(tmp_path / "a.csv", [line("u1"), line("bad", "x")])), lake=lake
        )
    )
    b = write_csv(tmp_path / "b.csv", [line("u9", FEB01)])
    report = run_etl(EtlOptions(input=str(b), lake=lake, full_refresh=True))
    assert [r["anonymous_user_id"] for r in lake_rows(lake)] == ["u9"]
    assert lake_rows(lake, "clickstream_rejected", "line_number") == []
    assert not (lake / "clickstream" / "year=2024" / "month=1").exists()
    assert report.full_refresh
    # After a refresh, a.csv is no longer ingested, so it would be read again.
    assert len(run_etl(EtlOptions(input=str(tmp_path / "a.csv"), lake=lake)).input_files) == 1


def test_duplicates_within_a_run_are_written_once(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", [line("u1"), line("u1"), f" {line('u1')} ", line("u2")])
    report = run_etl(EtlOptions(input=str(src), lake=tmp_path / "lake"))
    assert (report.rows_read, report.rows_written, report.rows_duplicate) == (4, 2, 2)
    assert len(lake_rows(tmp_path / "lake")) == 2


def test_same_rows_in_two_files_of_one_run(tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "a.csv", [line("u1")])
    write_csv(tmp_path / "in" / "b.csv", [line("u1")])
    report = run_etl(EtlOptions(input=str(tmp_path / "in"), lake=tmp_path / "lake"))
    assert (report.rows_written, report.rows_duplicate) == (1, 1)
    [kept] = lake_rows(tmp_path / "lake")
    assert kept["source_file"].endswith("a.csv")  # the first occurrence wins


def test_missing_column_fails_before_anything_is_written(tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "a.csv", [line("u1")])
    write_csv(
        tmp_path / "in" / "b.csv",
        ["u,http://a.com,1,c,l"],
        header="anonymous_user_id,url,time,browser,os",
    )
    lake = tmp_path / "lake"
    with pytest.raises(MissingColumnError, match="b.csv.*screen_resolution"):
        run_etl(EtlOptions(input=str(tmp_path / "in"), lake=lake))
    assert not lake.exists()


def test_reordered_extra_columns_bom_crlf_gzip(tmp_path: Path) -> None:
    header = "OS , extra, Screen_Resolution,TIME,url,browser,Anonymous_User_Id"
    write_csv(
        tmp_path / "in" / "a.csv.gz",
        [f"Linux,zzz,1x1,{JAN31},https://a.com/,Chrome,u1"],
        header=header,
        newline="\r\n",
        bom=True,
    )
    write_csv(tmp_path / "in" / "b.csv", [line("u2")])
    report = run_etl(EtlOptions(input=str(tmp_path / "in"), lake=tmp_path / "lake"))
    rows = {r["anonymous_user_id"]: r for r in lake_rows(tmp_path / "lake")}
    assert report.rows_written == 2
    assert rows["u1"]["os"] == "Linux" and rows["u1"]["screen_resolution"] == "1x1"
    assert (
        rows["u1"]["url_host"] == "a.com" and rows["u1"]["event_date"].isoformat() == "2024-01-31"
    )


def test_quoted_fields_with_commas_and_newlines_are_kept(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "a.csv",
        [
            f'u1,"https://a.com/?utm_content=a,b",{JAN31},"Chrome, beta",Linux,1x1',
            f'u2,https://a.com/,{JAN31},"multi\nline",Linux,1x1',
            line("u3", "bad"),
        ],
    )
    report = run_etl(EtlOptions(input=str(src), lake=tmp_path / "lake"))
    rows = {r["anonymous_user_id"]: r for r in lake_rows(tmp_path / "lake")}
    assert rows["u1"]["utm_content"] == "a,b" and rows["u1"]["browser"] == "Chrome, beta"
    assert rows["u2"]["browser"] == "multi\nline"
    [rej] = lake_rows(tmp_path / "lake", "clickstream_rejected")
    assert rej["raw_line"].startswith("u3,") and report.rows_rejected == 1


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", [line("u1")])
    with lake_lock(LakeLayout(tmp_path / "lake")), pytest.raises(LakeError, match="another run"):
        run_etl(EtlOptions(input=str(src), lake=tmp_path / "lake"))
