"""`clickstream etl` compacts the partitions it wrote to, in two tiers (`--auto-compact N`).

Attacked here: many small runs give the same rows and view answers as the same runs without
compaction, while no partition ever holds 2N files or more; a tier-1 compaction leaves earlier
compactions' files alone (its cost follows the new input) and only every N-th merges the month;
a bad value fails before anything is written; a lake another writer holds is left alone (the run
still succeeds); SIGKILL at random moments of runs that compact leaves every row exactly once;
an S3 lake (moto server) compacts the same way.
"""

from __future__ import annotations

import fcntl
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from clickstream.cli.etl import _compact_after
from clickstream.engines.base import no_progress
from clickstream.errors import LakeBusyError
from clickstream.generate import generate
from clickstream.lake.compact import compact
from clickstream.lake.store import open_store
from clickstream.pipeline import EtlOptions, run_etl
from tests.aws.conftest import aws, moto_endpoint  # noqa: F401 (fixtures)
from tests.conftest import index_matches_data, lake_rows
from tests.integration.test_compact import _keys, _s3_rows, answers, cli, table_files


def _inputs(tmp: Path, runs: int, rows: int = 250) -> list[Path]:
    # Every run spans the same months; the last seed repeats the first (duplicates only).
    return [
        generate(tmp / f"in{i}" / "part.csv", rows, seed=300 + i % (runs - 1)) for i in range(runs)
    ]


def _per_partition(lake: Path) -> Counter[str]:
    return Counter(f.rsplit("/", 1)[0] for f in table_files(lake))


def _compactions(lake: str | Path) -> list:
    return [r for r in open_store(str(lake)).reports() if r.engine == "compact"]


def test_many_small_runs_stay_few_files_with_the_same_rows(tmp_path: Path) -> None:
    n = 3
    inputs = _inputs(tmp_path, 12)
    auto, plain = tmp_path / "auto", tmp_path / "plain"
    most = 0
    for src in inputs:
        proc = cli("etl", "-q", "-i", str(src), "-l", str(auto), "--auto-compact", str(n))
        assert proc.returncode == 0, proc.stderr
        assert (
            cli("etl", "-q", "-i", str(src), "-l", str(plain), "--auto-compact", "0").returncode
            == 0
        )
        most = max(most, max(_per_partition(auto).values()))
        assert lake_rows(auto) == lake_rows(plain)
    assert most < 2 * n
    assert max(_per_partition(plain).values()) >= 10  # without it, one file per run
    assert answers(auto) == answers(plain)
    done = _compactions(auto)
    ids = {c.run_id for c in done}
    tier2 = [c for c in done if ids & set(c.compacted_runs)]
    tier1 = [c for c in done if not ids & set(c.compacted_runs)]
    assert tier1 and tier2, "both tiers ran"
    index_matches_data(auto)  # every compacted file indexed, no stale index left behind
    assert not list((auto / "_staging").iterdir()) and not list(auto.glob("_runs/*.commit.json"))


def test_tier_one_leaves_earlier_compactions_alone(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    inputs = _inputs(tmp_path, 6)[:5]  # five distinct inputs
    for src in inputs[:2]:
        run_etl(EtlOptions(input=str(src), lake=lake))
    touched = [(p.year, p.month) for p in run_etl(EtlOptions(str(inputs[2]), str(lake))).partitions]
    first = compact(str(lake), 3, touched=touched)
    assert first.run_id is not None
    kept = {f for f in table_files(lake) if first.run_id in f}
    assert kept
    for src in inputs[3:]:
        run_etl(EtlOptions(input=str(src), lake=lake))
    # Two more runs' files beside one compaction's: below 3 runs' files, nothing to do...
    assert compact(str(lake), 3, touched=touched).run_id is None
    extra = generate(tmp_path / "x" / "x.csv", 250, seed=777)
    rows_before = len(lake_rows(lake))
    report = run_etl(EtlOptions(input=str(extra), lake=lake))
    second = compact(str(lake), 3, touched=[(p.year, p.month) for p in report.partitions])
    # ...then only the runs' files are merged; the first compaction's files stay as they were.
    assert second.run_id is not None
    assert kept <= set(table_files(lake))
    assert len(lake_rows(lake)) == rows_before + report.rows_written


def test_bad_value_fails_before_the_run(tmp_path: Path) -> None:
    src = generate(tmp_path / "in" / "a.csv", 50, seed=1)
    for bad in ("1", "-2", "x"):
        proc = cli("etl", "-i", str(src), "-l", str(tmp_path / "lake"), "--auto-compact", bad)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert "--auto-compact" in proc.stderr or "auto-compact" in proc.stderr
    assert not (tmp_path / "lake").exists()


def test_a_busy_lake_is_left_for_the_other_writer(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    reports = [run_etl(EtlOptions(input=str(s), lake=lake)) for s in _inputs(tmp_path, 4)[:3]]
    files = table_files(lake)
    with open(lake / "_lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LakeBusyError):
            compact(str(lake), 2, touched=[(p.year, p.month) for p in reports[-1].partitions])
        assert _compact_after(reports[-1], 2, no_progress) is None
    assert table_files(lake) == files
    assert _compact_after(reports[-1], 2, no_progress) is not None
    assert len(table_files(lake)) < len(files)


@pytest.mark.slow
def test_killed_runs_that_compact_keep_every_row_once(tmp_path: Path) -> None:
    lake, reference = tmp_path / "lake", tmp_path / "reference"
    inputs = _inputs(tmp_path, 8, rows=3_000)
    rng = random.Random(11)
    for src in inputs:
        run_etl(EtlOptions(input=str(src), lake=reference))
        proc = subprocess.Popen(
            [sys.executable, "-m", "clickstream", "etl", "-q", "-i", str(src), "-l", str(lake),
             "--auto-compact", "2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(rng.uniform(0.8, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Whatever was interrupted, the next writer recovers; running it again completes it.
        again = cli("etl", "-q", "-i", str(src), "-l", str(lake), "--auto-compact", "2")
        assert again.returncode == 0, again.stderr
        assert lake_rows(lake) == lake_rows(reference)
        assert max(_per_partition(lake).values()) < 4
    assert answers(lake) == answers(reference)
    assert not list(lake.glob("_runs/*.commit.json"))


@pytest.mark.aws
def test_auto_compaction_on_s3(aws, tmp_path: Path) -> None:  # noqa: F811
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    aws.create_bucket(Bucket=bucket)
    root = f"s3://{bucket}/auto"
    inputs = _inputs(tmp_path, 4)
    reference = tmp_path / "reference"
    for src in inputs:
        proc = cli("etl", "-q", "-i", str(src), "-l", root, "--auto-compact", "2")
        assert proc.returncode == 0, proc.stderr
        run_etl(EtlOptions(input=str(src), lake=reference))
    keys = [k for k in _keys(aws, root) if "/clickstream/" in k]
    per = Counter(k.rsplit("/", 1)[0] for k in keys)
    assert max(per.values()) < 4 and _compactions(root)
    assert len(_s3_rows(root)) == len(lake_rows(reference))
    assert answers(root) == answers(reference)
