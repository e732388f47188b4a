"""Every line of docs/data-contract.md, checked through the whole ETL of each engine."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb
import pytest

from clickstream.contract.schema import OUTPUT_COLUMNS, PARTITION_COLUMNS, REJECT_REASON_NAMES
from clickstream.lake.report import RunReport
from clickstream.pipeline import EtlOptions, run_etl
from tests.conftest import lake_rows, write_csv
from tests.contract.cases import CASES, NO_USER

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


@pytest.fixture(scope="module", params=ENGINES)
def contract_run(
    request, tmp_path_factory
) -> tuple[RunReport, dict[str, Any], list[dict[str, Any]], Path]:
    tmp = tmp_path_factory.mktemp(f"contract-{request.param}")
    lines = [f"{uid},{fields}" for uid, fields, _ in CASES]
    lines += [NO_USER, '"broken quote,' + "x" * 3]
    lines.insert(3, "extra,https://a.com/,1600000000,Chrome,Linux,1x1,surplus")
    lines.insert(5, "short,https://a.com/,1600000000")
    src = write_csv(tmp / "contract.csv", lines)
    lake = tmp / "lake"
    report = run_etl(EtlOptions(input=str(src), lake=lake, engine=request.param))
    kept = {r["anonymous_user_id"]: r for r in lake_rows(lake)}
    rejected = lake_rows(lake, "clickstream_rejected", "line_number")
    return report, kept, rejected, src


@pytest.mark.parametrize(("uid", "fields", "expected"), CASES, ids=[c[0] for c in CASES])
def test_case(contract_run, uid: str, fields: str, expected: Any) -> None:
    _, kept, rejected, _ = contract_run
    if isinstance(expected, str):
        assert uid not in kept
        reasons = [r["reject_reason"] for r in rejected if r["raw_line"].startswith(uid + ",")]
        assert reasons == [expected]
    else:
        assert uid in kept, f"{uid} was rejected"
        got = {k: kept[uid][k] for k in expected}
        assert got == expected


def test_lake_schema_is_the_contract(contract_run) -> None:
    report, kept, _, _ = contract_run
    some = next(iter(kept.values()))
    assert set(some) == {c.name for c in (*OUTPUT_COLUMNS, *PARTITION_COLUMNS)}
    # Inside each file: exactly the contract's columns, in order, with its types.
    [file] = list(Path(report.lake, "clickstream", "year=2024", "month=1").glob("*.parquet"))
    described = duckdb.sql(
        f"DESCRIBE SELECT * FROM read_parquet('{file}', hive_partitioning=false)"
    )
    assert [(name, typ) for name, typ, *_ in described.fetchall()] == [
        (c.name, c.type) for c in OUTPUT_COLUMNS
    ]


def test_event_id_is_md5_of_trimmed_fields(contract_run) -> None:
    _, kept, _, _ = contract_run
    r = kept["trim"]
    fields = ["trim", "http://a.com/x", "1600000000", "Chrome", "Mac", "1x2"]
    assert r["event_id"] == hashlib.md5("\x1f".join(fields).encode()).hexdigest()


def test_source_file_is_recorded(contract_run) -> None:
    _, kept, _, src = contract_run
    assert {r["source_file"] for r in kept.values()} == {str(src.resolve())}


def test_rejects_carry_reason_line_and_redacted_raw_line(contract_run) -> None:
    report, _, rejected, src = contract_run
    assert {r["reject_reason"] for r in rejected} == set(REJECT_REASON_NAMES)
    by_line = {r["line_number"]: r for r in rejected}
    # header is line 1; the 'extra' record was inserted as the 4th data record -> line 5.
    assert by_line[5]["reject_reason"] == "malformed_csv"
    assert by_line[5]["raw_line"].startswith("extra,")
    assert by_line[7]["reject_reason"] == "malformed_csv"
    assert by_line[7]["raw_line"].startswith("short,")
    lines = src.read_text().splitlines()
    for r in rejected:
        if r["reject_reason"] != "malformed_csv":
            assert lines[r["line_number"] - 1].split(",")[0] == r["raw_line"].split(",")[0]
    assert all(r["run_id"] == report.run_id for r in rejected)
    assert not any("Pa:ss" in r["raw_line"] for r in rejected)


def test_missing_user_id_is_checked_first(contract_run) -> None:
    _, _, rejected, _ = contract_run
    assert [r["reject_reason"] for r in rejected if r["raw_line"] == NO_USER] == ["missing_user_id"]


def test_counts_reconcile(contract_run) -> None:
    report, kept, rejected, _ = contract_run
    assert report.rows_read == len(CASES) + 4
    assert report.rows_written == len(kept)
    assert report.rows_rejected == len(rejected)
    assert report.rows_read == report.rows_written + report.rows_rejected + report.rows_duplicate
