"""A full refresh killed in the middle of its commit (old files already deleted, one new file
moved in, no report yet): the next writer rolls it forward, so the lake holds the refresh's rows
alone — never a mix of old and new, never neither."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from clickstream.generate import generate
from clickstream.lake.faults import FAULT_ENV
from clickstream.pipeline import EtlOptions, run_etl
from clickstream.query.session import open_lake, run_query


def _count(lake: Path) -> int:
    return int(run_query(open_lake(lake), "SELECT count(*) FROM clickstream")[1][0][0])


@pytest.mark.parametrize("step", ["before_commit", "mid_commit"])
def test_full_refresh_killed_mid_commit(tmp_path: Path, step: str) -> None:
    lake = tmp_path / "lake"
    old = generate(tmp_path / "old.csv", 900, seed=61)
    first = run_etl(EtlOptions(input=str(old), lake=str(lake)))
    new = generate(tmp_path / "new.csv", 700, seed=62)
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream", "etl", "-q", "--full-refresh",
         "-i", str(new), "-l", str(lake)],
        env={**os.environ, FAULT_ENV: step}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    reference = run_etl(EtlOptions(input=str(new), lake=str(tmp_path / "ref")))
    if step == "before_commit":  # no log yet: nothing happened
        assert _count(lake) == first.rows_written
        return
    # Old files deleted and one new file in: the log says what is left to do. Readers refuse;
    # the next writer (a plain run of the same input) finishes the refresh, and then finds the
    # input already read.
    assert list((lake / "_runs").glob("*.commit.json"))
    with pytest.raises(Exception, match="committing"):
        open_lake(lake)
    again = run_etl(EtlOptions(input=str(new), lake=str(lake)))
    assert again.rows_read == 0
    assert not list((lake / "_runs").glob("*.commit.json"))
    assert _count(lake) == reference.rows_written  # the refresh's rows alone: old ones gone
