"""A run killed with SIGKILL never leaves a partial run visible after recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clickstream.generate import generate
from clickstream.lake.commit import FAULT_ENV
from clickstream.pipeline import EtlOptions, run_etl
from tests.conftest import lake_rows, write_csv
from tests.integration.test_dedupe_index import index_matches_data


def etl_cmd(src: Path, lake: Path) -> list[str]:
    return [sys.executable, "-m", "clickstream", "etl", "-i", str(src), "-l", str(lake), "-q"]


def snapshot(lake: Path) -> tuple[list[str], list[tuple]]:
    files = sorted(
        str(p.relative_to(lake)) for p in lake.rglob("*.parquet") if "_staging" not in p.parts
    )
    # source_file is left out: the same rows may come from equal files in different folders.
    return files, [tuple(v for k, v in r.items() if k != "source_file") for r in lake_rows(lake)]


@pytest.fixture
def lake_with_history(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    first = write_csv(tmp_path / "old.csv", ["u0,https://a.com/,1706745599,Chrome,Linux,1x1"])
    run_etl(EtlOptions(input=str(first), lake=lake))
    return lake


def test_killed_before_commit_leaves_lake_unchanged(tmp_path: Path, lake_with_history: Path):
    lake = lake_with_history
    before = snapshot(lake)
    src = write_csv(
        tmp_path / "new.csv",
        ["u1,https://a.com/,1706745600,Chrome,Linux,1x1", "u2,bad-url,1706745600,Chrome,Linux,1x1"],
    )
    env = {**os.environ, FAULT_ENV: "before_commit"}
    proc = subprocess.run(etl_cmd(src, lake), env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(lake) == before
    assert any((lake / "_staging").iterdir())  # the dead run's leftovers, invisible to readers
    # The next run sweeps the leftovers and, since nothing was committed, ingests the file.
    report = run_etl(EtlOptions(input=str(src), lake=lake))
    assert (report.rows_written, report.rows_rejected) == (1, 1)
    assert not any((lake / "_staging").iterdir())


def test_killed_mid_commit_is_rolled_forward(tmp_path: Path, lake_with_history: Path):
    lake = lake_with_history
    src = write_csv(
        tmp_path / "new.csv",
        [
            "u1,https://a.com/,1706745600,Chrome,Linux,1x1",
            "u2,https://a.com/,1704067200,Chrome,Linux,1x1",
            "u3,bad-url,1706745600,Chrome,Linux,1x1",
        ],
    )
    clean = tmp_path / "clean"
    run_etl(EtlOptions(input=str(tmp_path / "old.csv"), lake=clean))
    run_etl(EtlOptions(input=str(src), lake=clean))
    env = {**os.environ, FAULT_ENV: "mid_commit"}
    proc = subprocess.run(etl_cmd(src, lake), env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert list((lake / "_runs").glob("*.commit.json"))
    # Any writer (here: a re-run) completes the committed run first, then skips the file.
    again = run_etl(EtlOptions(input=str(src), lake=lake))
    assert again.input_files == [] and again.skipped_files
    assert snapshot(lake)[1] == snapshot(clean)[1]
    assert not list((lake / "_runs").glob("*.commit.json"))
    index_matches_data(lake)  # the event-id index was rolled forward with the data


@pytest.fixture(scope="module")
def big_input(tmp_path_factory) -> tuple[Path, Path, int]:
    """A 200k-row input and the lake a clean (never killed) run builds from it."""
    tmp = tmp_path_factory.mktemp("big")
    src = generate(tmp / "big.csv", 200_000, seed=3, bad_fraction=0.01)
    old = write_csv(tmp / "old.csv", ["u0,https://a.com/,1706745599,Chrome,Linux,1x1"])
    clean = tmp / "clean"
    run_etl(EtlOptions(input=str(old), lake=clean))
    expected = run_etl(EtlOptions(input=str(src), lake=clean))
    return src, clean, expected.rows_written


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.4, 1.2, 2.5])
def test_sigkill_at_any_moment(lake_with_history: Path, big_input, delay: float) -> None:
    src, clean, written = big_input
    lake = lake_with_history
    before = snapshot(lake)
    proc = subprocess.Popen(
        etl_cmd(src, lake), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Whatever moment it died at, after recovery the lake holds all of the run or none of it,
    # and finishing the job gives exactly what a clean run gives.
    run_etl(EtlOptions(input=str(src), lake=lake))
    after = snapshot(lake)
    assert len(after[1]) == len(before[1]) + written
    assert after[1] == snapshot(clean)[1]
    index_matches_data(lake)
