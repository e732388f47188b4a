"""lake.metadata on its own: what a commit log or run report must be before it is used."""

from __future__ import annotations

import json

import pytest

from clickstream.errors import CorruptMetadataError
from clickstream.lake import metadata
from clickstream.lake.report import PartitionReport, RunReport

RUN = "20240101T000000Z-abcdef"


def _report(**change: object) -> dict[str, object]:
    report = RunReport(run_id=RUN, engine="duckdb", lake="/l", started_at="t", rows_read=1,
                       rows_written=1, partitions=[PartitionReport(2024, 1, 1)])  # fmt: skip
    report.input_files = []
    data = report.to_dict()
    data["rows_read"] = 1
    data["input_files"] = [{"path": "/in/a.csv", "size": 1, "mtime_ns": 1, "rows_read": 1}]
    data.update(change)
    return data


def _raw(data: object) -> bytes:
    return json.dumps(data).encode()


def test_a_valid_report_and_log_pass() -> None:
    assert metadata.run_report(f"{RUN}.json", _raw(_report())).rows_written == 1
    log = {"run_id": RUN, "moves": [["clickstream/year=2024/month=1/a.parquet"] * 2],
           "deletes": ["clickstream_rejected/b.parquet"], "report": _report()}  # fmt: skip
    entry = metadata.local_commit(f"_runs/{RUN}.commit.json", _raw(log))
    assert entry.moves == ["clickstream/year=2024/month=1/a.parquet"]


@pytest.mark.parametrize(
    "path",
    [
        "../x.parquet",
        "clickstream/../../x.parquet",
        "/abs/clickstream/x.parquet",
        "clickstream//x.parquet",
        "clickstream/./x.parquet",
        "clickstream\\..\\x.parquet",
        "_runs/x.parquet",
        "clickstream/x.json",
        "clickstream",
        "~/clickstream/x.parquet",
        "clickstream/x.parquet\x00",
        7,
        None,
    ],
)
def test_paths_must_be_plain_and_inside_a_table(path: object) -> None:
    with pytest.raises(ValueError):
        metadata.data_path(path)


@pytest.mark.parametrize(
    "change",
    [
        {"run_id": "../../victimdir"},
        {"run_id": RUN + "/.."},
        {"rows_written": "1"},
        {"rows_written": True},
        {"rows_written": -1},
        {"full_refresh": 0},
        {"partitions": {"year": 2024}},
        {"input_files": [{"path": "a", "size": 1}]},
        {"rejected_by_reason": {"invalid_url": 1.5}},
        {"seconds": "fast"},
        {"unknown": 1},
        {"rows_read": 5},  # counts do not reconcile
    ],
)
def test_report_fields_are_checked(change: dict[str, object]) -> None:
    with pytest.raises(CorruptMetadataError, match=f"{RUN}.json: invalid run report"):
        metadata.run_report(f"_runs/{RUN}.json", _raw(_report(**change)))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"nul\x00",
        b'{"run_id": NaN}',
        b'{"a": 1, "a": 1}',
        b"\xff",
        b"[1]",
        b"1" * (metadata.MAX_BYTES + 1),
    ],  # fmt: skip
)
def test_raw_bytes_are_checked(raw: bytes) -> None:
    with pytest.raises(CorruptMetadataError):
        metadata.run_report(f"{RUN}.json", raw)


def test_file_name_must_match_run_id() -> None:
    with pytest.raises(CorruptMetadataError, match="differs"):
        metadata.run_report("20250101T000000Z-000000.json", _raw(_report()))
    with pytest.raises(CorruptMetadataError, match="not a run id"):
        metadata.run_report("../x.json", _raw(_report()))


def test_s3_deletes_stay_under_the_lake_prefix() -> None:
    ok = {"run_id": RUN, "uploads": ["clickstream/a.parquet"],
          "deletes": ["prod/clickstream/b.parquet"]}  # fmt: skip
    assert metadata.s3_commit(f"{RUN}.commit.json", _raw(ok), "prod/").deletes
    for bad in (["other/clickstream/b.parquet"], ["prod/../prod/clickstream/b.parquet"]):
        with pytest.raises(CorruptMetadataError):
            metadata.s3_commit(f"{RUN}.commit.json", _raw({**ok, "deletes": bad}), "prod/")


def test_a_report_claiming_rows_needs_its_files() -> None:
    report = metadata.run_report(f"{RUN}.json", _raw(_report()))
    metadata.check_reports_have_files([report], {f"{RUN}_0.parquet"}, "_runs")
    with pytest.raises(CorruptMetadataError, match="none of its files"):
        metadata.check_reports_have_files([report], {"other_0.parquet"}, "_runs")
