"""`clickstream compact`: many small files become one per partition, with a run's guarantees.

Attacked here: rows (every column) and query answers unchanged, one file per partition with a
name readers accept, idempotence, reruns still skipping ingested inputs and deduping against the
compacted files, a forged compaction report, SIGKILL at each commit step and at random moments
(local and S3: the lake reads every row exactly once after the next writer's recovery).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import pytest

from clickstream.errors import ConfigError, CorruptMetadataError
from clickstream.generate import generate
from clickstream.lake.commit import FAULT_ENV
from clickstream.lake.compact import compact, plan
from clickstream.lake.layout import RUN_ID_PATTERN
from clickstream.lake.store import open_store
from clickstream.pipeline import EtlOptions, run_etl
from clickstream.query.session import open_lake, run_query
from tests.aws.conftest import aws, moto_endpoint  # noqa: F401 (fixtures)
from tests.conftest import index_matches_data, lake_rows

#: Queries over every view the README promises, answered before and after compaction.
VIEW_QUERIES = [
    "SELECT count(*), count(DISTINCT event_id), min(event_time), max(event_time) FROM clickstream",
    "SELECT * FROM pageviews_daily ORDER BY ALL",
    "SELECT * FROM traffic_sources ORDER BY ALL",
    "SELECT * FROM top_pages ORDER BY ALL",
    "SELECT * FROM devices ORDER BY ALL",
    # Rounded: a float sum depends on the order rows arrive in, and compaction reorders them.
    "SELECT count(*), round(avg(duration_seconds), 6), round(avg(is_bounce::INT), 9) FROM sessions",
]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clickstream", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def table_files(lake: Path) -> list[str]:
    return sorted(
        str(p.relative_to(lake))
        for p in (lake / "clickstream").rglob("*.parquet")
        if "_staging" not in p.parts
    )


def answers(lake: str | Path) -> list[list[tuple]]:
    session = open_lake(lake)
    return [run_query(session, q)[1] for q in VIEW_QUERIES]


def small_runs(tmp: Path, lake: str | Path, runs: int, rows: int = 300) -> list[Path]:
    """``runs`` ETL runs into the same months (some rows repeat across runs: duplicates)."""
    inputs = []
    for i in range(runs):
        src = generate(tmp / f"in{i}" / "part.csv", rows, seed=100 + i % (runs - 1 or 1))
        run_etl(EtlOptions(input=str(src), lake=lake))
        inputs.append(src)
    return inputs


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    small_runs(tmp_path, lake, 6)
    return lake


def test_compaction_keeps_every_row_and_answer(lake: Path, tmp_path: Path) -> None:
    rows, views, files = lake_rows(lake), answers(lake), table_files(lake)
    partitions = {f.rsplit("/", 1)[0] for f in files}
    assert len(files) > 2 * len(partitions)  # many small files per partition
    some = str(lake / files[0])
    schema = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{some}')").fetchall()

    result = compact(str(lake))

    after = table_files(lake)
    assert {f.rsplit("/", 1)[0] for f in after} == partitions
    assert len(after) == len(partitions)
    assert all(RUN_ID_PATTERN.fullmatch(Path(f).stem.rsplit("_", 1)[0]) for f in after)
    assert all(Path(f).stem.startswith(f"{result.run_id}_") for f in after)
    assert lake_rows(lake) == rows
    assert answers(lake) == views
    new = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{lake / after[0]}')").fetchall()
    assert new == schema
    assert sum(p.rows for p in result.partitions) == len(rows)
    assert sum(p.files_before for p in result.partitions) == len(files)
    # The run reports still validate, and the compaction names the runs it absorbed.
    reports = open_store(str(lake)).reports()
    mine = [r for r in reports if r.run_id == result.run_id]
    owners = {Path(f).stem.rsplit("_", 1)[0] for f in files}
    assert mine and mine[0].engine == "compact" and mine[0].compacted_runs == sorted(owners)
    assert len(owners) == 5  # the sixth run repeats the first one's rows: duplicates only
    assert not list((lake / "_staging").iterdir()) and not list(lake.glob("_runs/*.commit.json"))
    # Each new file has its event-id index; the replaced runs' index files went with their data.
    index_matches_data(lake)
    indexes = sorted(str(p.relative_to(lake / "_index")) for p in lake.rglob("_index/*/*/*"))
    assert indexes == [f.removeprefix("clickstream/") for f in after]


def test_compaction_is_idempotent_and_runs_continue(
    lake: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    compact(str(lake))
    files, rows = table_files(lake), lake_rows(lake)
    again = compact(str(lake))
    assert again.run_id is None and again.partitions == []
    assert table_files(lake) == files
    # Inputs ingested before compaction are still skipped...
    first = tmp_path / "in0" / "part.csv"
    rerun = run_etl(EtlOptions(input=str(first), lake=lake))
    assert rerun.input_files == [] and rerun.skipped_files == [str(first)]
    # ...and the same rows under a new name are duplicates of the compacted files.
    copy = tmp_path / "copy" / "renamed.csv"
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())
    with caplog.at_level(logging.DEBUG, logger="clickstream.engines.duckdb"):
        dup = run_etl(EtlOptions(input=str(copy), lake=lake))
    assert dup.rows_written == 0 and dup.rows_duplicate > 0
    assert lake_rows(lake) == rows
    # Found through the compaction's index: no compacted data file was read for it.
    checks = [r.getMessage() for r in caplog.records if "duplicate check" in r.getMessage()]
    assert checks and checks[-1].endswith(" index files, 0 data files"), checks
    # A new run adds a file; compacting twice more folds it in, then finds nothing.
    extra = generate(tmp_path / "extra" / "x.csv", 200, seed=999)
    run_etl(EtlOptions(input=str(extra), lake=lake))
    assert compact(str(lake)).run_id is not None
    assert compact(str(lake)).run_id is None
    assert len(lake_rows(lake)) > len(rows)
    index_matches_data(lake)


def test_index_files_left_by_an_older_compaction_are_removed(lake: Path, tmp_path: Path) -> None:
    """Index files of runs with no data left (what compactions before the index wrote) go with the
    next compaction of their partition; a file no committed run names stays (not the lake's)."""
    saved = tmp_path / "saved_index"
    shutil.copytree(lake / "_index", saved)
    compact(str(lake))
    shutil.copytree(saved, lake / "_index", dirs_exist_ok=True)  # as an older compaction left it
    foreign = next((lake / "_index").glob("*/*")) / "20200101T000000Z-abcdef_0.parquet"
    foreign.write_bytes(next(saved.rglob("*.parquet")).read_bytes())
    # Under a committed run's name, but in a subfolder: not the partition's file, never deleted.
    aside = foreign.parent / "backup" / next(saved.rglob("*.parquet")).name
    aside.parent.mkdir()
    aside.write_bytes(foreign.read_bytes())
    run_etl(EtlOptions(input=str(generate(tmp_path / "x" / "x.csv", 300, seed=4)), lake=lake))
    result = compact(str(lake))
    indexes = sorted(p.relative_to(lake / "_index") for p in lake.glob("_index/*/*/*.parquet"))
    kept = [p for p in indexes if not p.name.startswith(result.run_id)]
    assert kept == [foreign.relative_to(lake / "_index")]
    assert aside.read_bytes() == foreign.read_bytes()
    foreign.unlink()
    shutil.rmtree(aside.parent)
    index_matches_data(lake)


def test_min_files_threshold(lake: Path) -> None:
    store = open_store(str(lake))
    runs = {r.run_id for r in store.reports()}
    counts = {k: len(v) for k, v in plan(store, 2, runs).items()}
    high = max(counts.values())
    assert plan(store, high + 1, runs) == {}
    assert compact(str(lake), min_files=high + 1).run_id is None
    with pytest.raises(ConfigError):
        compact(str(lake), min_files=1)
    bad = cli("compact", "-l", str(lake), "--min-files", "0")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--min-files" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_cli_compact(lake: Path) -> None:
    rows = lake_rows(lake)
    proc = cli("compact", "--lake", str(lake))
    assert proc.returncode == 0, proc.stderr
    assert "compacted" in proc.stderr
    proc = cli("compact", "--lake", str(lake))
    assert proc.returncode == 0 and "nothing to compact" in proc.stderr
    assert lake_rows(lake) == rows


def test_forged_compaction_report_is_refused(lake: Path) -> None:
    """A report claiming to have absorbed runs must own files, as a run's report must."""
    runs = lake / "_runs"
    victim = sorted(runs.glob("*.json"))[0]
    data = json.loads(victim.read_text())
    forged_id = "20990101T000000Z-abcdef"
    data.update(run_id=forged_id, rows_read=0, rows_written=0, rows_rejected=0,
                rows_duplicate=0, rejected_by_reason={}, partitions=[], input_files=[],
                engine="compact", compacted_runs=[data["run_id"]])  # fmt: skip
    (runs / f"{forged_id}.json").write_text(json.dumps(data))
    with pytest.raises(CorruptMetadataError, match=forged_id):
        open_store(str(lake)).reports()
    # A run refuses to write while it is there (one line, non-zero exit).
    proc = cli("compact", "-l", str(lake))
    assert proc.returncode != 0 and forged_id in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_key_in_a_report_is_still_refused(lake: Path) -> None:
    runs = lake / "_runs"
    victim = sorted(runs.glob("*.json"))[0]
    data = json.loads(victim.read_text())
    data["compacted_runs"] = ["not a run id"]
    victim.write_text(json.dumps(data))
    with pytest.raises(CorruptMetadataError, match="compacted run"):
        open_store(str(lake)).reports()


@pytest.mark.parametrize("step", ["before_commit", "mid_commit"])
def test_killed_at_a_commit_step(lake: Path, step: str) -> None:
    rows, files = lake_rows(lake), table_files(lake)
    proc = cli("compact", "-q", "-l", str(lake), env={FAULT_ENV: step})
    assert proc.returncode == -signal.SIGKILL
    if step == "before_commit":
        # Nothing committed: readable as it was, at once.
        assert table_files(lake) == files and answers(lake)
    else:
        # Committed: readers wait for the next writer to roll it forward.
        assert list(lake.glob("_runs/*.commit.json"))
        with pytest.raises(Exception, match="interrupted"):
            open_lake(lake)
    again = compact(str(lake))  # recovers first
    after = table_files(lake)
    assert len(after) == len({f.rsplit("/", 1)[0] for f in files})
    assert lake_rows(lake) == rows
    assert again.run_id is None if step == "mid_commit" else again.run_id is not None
    assert not list(lake.glob("_runs/*.commit.json"))
    index_matches_data(lake)


def test_killed_at_random_moments(tmp_path: Path) -> None:
    """SIGKILL at random times while compacting: after recovery, every row exactly once."""
    lake = tmp_path / "lake"
    small_runs(tmp_path, lake, 8, rows=2_000)
    rows = lake_rows(lake)
    rng = random.Random(7)
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "clickstream", "compact", "-q", "-l", str(lake)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        open_store(str(lake)).recover()  # what every writer does first, under the lock
        assert lake_rows(lake) == rows
        index_matches_data(lake)  # a kill mid-commit never leaves data without its index
        assert open_store(str(lake)).reports()
        # Run another small ETL between kills so there is always something to compact.
        run_etl(EtlOptions(input=str(generate(tmp_path / f"k{_}" / "k.csv", 100, seed=50 + _)),
                           lake=lake))  # fmt: skip
        rows = lake_rows(lake)
    compact(str(lake))
    assert lake_rows(lake) == rows


# -- S3 ----------------------------------------------------------------------------------------


@pytest.fixture
def s3_lake(aws, tmp_path: Path) -> str:  # noqa: F811 (the aws fixture)
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    aws.create_bucket(Bucket=bucket)
    root = f"s3://{bucket}/compact"
    small_runs(tmp_path, root, 4)
    return root


def _keys(aws, root: str) -> list[str]:  # noqa: F811
    bucket, prefix = root[5:].split("/", 1)
    pages = aws.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _s3_rows(root: str) -> list[tuple]:
    session = open_lake(root)
    return run_query(session, "SELECT * FROM clickstream ORDER BY event_id")[1]


@pytest.mark.aws
def test_compaction_on_s3(s3_lake: str, aws, tmp_path: Path) -> None:  # noqa: F811
    rows, views = _s3_rows(s3_lake), answers(s3_lake)
    before = [k for k in _keys(aws, s3_lake) if "/clickstream/" in k]
    # A committed run's index file copied into a subfolder: not the partition's, never deleted.
    bucket = s3_lake[5:].split("/", 1)[0]
    source = next(k for k in _keys(aws, s3_lake) if "/_index/" in k)
    folder, name = source.rsplit("/", 1)
    planted = f"{folder}/backup/{name}"
    aws.copy_object(Bucket=bucket, Key=planted, CopySource={"Bucket": bucket, "Key": source})
    result = compact(s3_lake)
    after = [k for k in _keys(aws, s3_lake) if "/clickstream/" in k]
    assert len(after) == len(result.partitions) < len(before)
    assert all(k.rsplit("/", 1)[1].startswith(f"{result.run_id}_") for k in after)
    assert _s3_rows(s3_lake) == rows and answers(s3_lake) == views
    assert compact(s3_lake).run_id is None
    keys = _keys(aws, s3_lake)
    assert not any(k.endswith(".commit.json") or k.endswith("_lock") for k in keys)
    # One index file beside each new file; the replaced runs' index files were deleted.
    index = [k for k in keys if "/_index/" in k and k != planted]
    assert index == [k.replace("/clickstream/", "/_index/") for k in after]
    assert planted in keys
    # A renamed copy of an ingested input: every row a duplicate of the compacted files.
    copy = tmp_path / "copy" / "renamed.csv"
    copy.parent.mkdir()
    copy.write_bytes((tmp_path / "in0" / "part.csv").read_bytes())
    dup = run_etl(EtlOptions(input=str(copy), lake=s3_lake))
    assert dup.rows_written == 0 and dup.rows_duplicate > 0
    assert _s3_rows(s3_lake) == rows


@pytest.mark.aws
@pytest.mark.parametrize("step", ["before_commit", "mid_commit", "after_report"])
def test_killed_compaction_on_s3(s3_lake: str, aws, step: str) -> None:  # noqa: F811
    rows = _s3_rows(s3_lake)
    proc = cli("compact", "-q", "-l", s3_lake, env={FAULT_ENV: step})
    assert proc.returncode == -signal.SIGKILL
    compact(s3_lake)  # the next writer takes over the lock, recovers, then compacts
    assert _s3_rows(s3_lake) == rows
    keys = _keys(aws, s3_lake)
    assert not any(k.endswith(".commit.json") or k.endswith("_lock") for k in keys)
    partitions = {k.rsplit("/", 1)[0] for k in keys if "/clickstream/" in k}
    data = [k for k in keys if "/clickstream/" in k]
    assert len(data) == len(partitions)
    assert [k for k in keys if "/_index/" in k] == [k.replace("/clickstream/", "/_index/")
                                                    for k in data]  # fmt: skip
