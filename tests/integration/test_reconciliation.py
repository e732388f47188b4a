"""The run's own reconciliation, end to end: an engine whose counts do not add up (a row lost,
a row invented) fails the run before anything is committed.

The DuckDB engine is wrapped to misreport its counts — a stand-in for an engine bug, the only way
to reach these checks, which a correct engine never trips. What is asserted is the pipeline's
guard: the error, and a lake left exactly as it was."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from clickstream.engines.duckdb import DuckDBEngine
from clickstream.errors import InvariantError
from clickstream.generate import generate
from clickstream.pipeline import EtlOptions, run_etl
from tests.conftest import lake_rows


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _miscount(how: str) -> Any:
    real = DuckDBEngine.stage

    def stage(self: DuckDBEngine, request: Any, progress: Any) -> Any:
        result = real(self, request, progress)
        if how == "lost-in-reading":
            first = next(iter(result.rows_read_by_file))
            result.rows_read_by_file[first] -= 1
        elif how == "invented-in-reading":
            first = next(iter(result.rows_read_by_file))
            result.rows_read_by_file[first] += 1
        elif how == "lost-in-writing":
            result = dataclasses.replace(result, rows_written=result.rows_written - 1)
        elif how == "partition-miscounted":
            parts = dict(result.partitions)
            key = next(iter(parts))
            parts[key] += 1
            result = dataclasses.replace(result, partitions=parts)
        return result

    return stage


@pytest.mark.parametrize(
    "how", ["lost-in-reading", "invented-in-reading", "lost-in-writing", "partition-miscounted"]
)
def test_counts_that_do_not_reconcile_fail_the_run_before_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    lake = tmp_path / "lake"
    first = generate(tmp_path / "a.csv", 800, seed=3, bad_fraction=0.05)
    run_etl(EtlOptions(input=str(first), lake=str(lake)))
    before, rows = _tree(lake), lake_rows(lake)
    second = generate(tmp_path / "b.csv", 600, seed=4, bad_fraction=0.05)
    monkeypatch.setattr(DuckDBEngine, "stage", _miscount(how))
    with pytest.raises(InvariantError):
        run_etl(EtlOptions(input=str(second), lake=str(lake)))
    # Nothing committed, nothing half-written, no staging left: the lake is byte for byte as it was.
    after = _tree(lake)
    assert {k for k in after if not k.startswith("_staging")} == set(before), sorted(after)
    assert all(after[k] == before[k] for k in before if not k.startswith("_lock"))
    assert not any(k.startswith("_staging/") for k in after), sorted(after)
    assert lake_rows(lake) == rows
    monkeypatch.undo()
    report = run_etl(EtlOptions(input=str(second), lake=str(lake)))  # the input is read again
    assert report.rows_read == 600
