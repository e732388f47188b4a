"""Compaction: each partition's many small files rewritten into one, committed as a run is.

Hourly runs leave one file per run in every month they touch; readers then open hundreds of
files. ``compact`` rewrites every partition holding at least ``min_files`` table files into one
file sorted by ``event_time``, under the lake lock, through the same commit protocol as a run:

* the new files are staged first; nothing in the lake changes until the commit point;
* the commit log names the new files *and* the old ones to delete, so a crash anywhere after the
  commit point is rolled forward by the next writer's ``recover()`` (local: the log's rename;
  S3: the report's put), and one before it leaves the lake exactly as it was;
* each new file gets its event-id index (``lake.index``), and the index files of runs left with
  no data file in the partition go, in the same commit: a later run's duplicate check reads the
  index, never the compacted month;
* the compaction's own run report (engine ``compact``, no rows read or written) names the runs
  whose files it replaced in ``compacted_runs``: their reports keep counting as ingested input,
  and ``lake.metadata`` accepts that their table files are gone.

The new file is named ``<compaction run id>_<n>.parquet``: the name every reader accepts. Rows are
copied as they are (no dedupe, no contract): the count written must equal the count read, or
nothing is committed. The quarantine and the other owners' side tables are left as they are.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from clickstream import s3
from clickstream.engines.base import Progress, no_progress
from clickstream.errors import ConfigError, InvariantError, LakeError
from clickstream.lake import sessions_table
from clickstream.lake.faults import fault
from clickstream.lake.files import table_match, writer_files
from clickstream.lake.index import ID_COLUMNS, run_of
from clickstream.lake.layout import INDEX, TABLE, UTC, LakeLayout, new_run_id
from clickstream.lake.report import RunReport
from clickstream.lake.store import LakeStore, LocalLake, open_store

log = logging.getLogger(__name__)

#: A partition with at least this many table files is rewritten into one.
DEFAULT_MIN_FILES = 2
ENGINE = "compact"


@dataclass
class PartitionCompaction:
    year: int
    month: int
    files_before: int
    rows: int


@dataclass
class CompactionResult:
    run_id: str | None = None
    """None when no partition needed compacting (nothing was written)."""
    partitions: list[PartitionCompaction] = field(default_factory=list)
    seconds: float = 0.0


def _relative(store: LakeStore, path: str) -> str:
    root = store.root.rstrip("/") + "/"
    if not path.startswith(root):
        raise InvariantError(f"{path}: listed outside the lake {store.root}")
    return path[len(root) :]


def _lake_files(
    store: LakeStore, files: list[str], runs: set[str]
) -> dict[str, tuple[int, int, str]]:
    """path -> (year, month, run id) of the files that are the lake (``lake.files``): a stray
    file, or one named like a writer's by a run with no report, is neither read nor deleted."""
    out = {}
    for path in writer_files(store.root, files, runs):
        match = table_match(store.root, path)
        assert match is not None
        out[path] = (int(match["year"]), int(match["month"]), match["run"])
    return out


def plan(store: LakeStore, min_files: int, runs: set[str]) -> dict[tuple[int, int], list[str]]:
    """The partitions to rewrite: (year, month) -> their table files (paths or URIs).

    ``runs``: the committed run ids; only their writer-named files count.
    """
    groups: dict[tuple[int, int], list[str]] = defaultdict(list)
    for path, (year, month, _) in _lake_files(store, store.table_files(), runs).items():
        groups[(year, month)].append(path)
    return {k: sorted(v) for k, v in sorted(groups.items()) if len(v) >= min_files}


def tiered_plan(
    store: LakeStore,
    touched: list[tuple[int, int]],
    min_files: int,
    runs: set[str],
    compactions: set[str],
) -> dict[tuple[int, int], list[str]]:
    """What a run compacts after itself, in two tiers, so its cost follows its input.

    A touched partition's files written by runs are merged once there are ``min_files`` of
    them; the files earlier compactions wrote are left alone until they would number
    ``min_files`` too, and only then is the whole partition merged. A partition so holds fewer
    than ``2 * min_files`` files, and an automatic compaction rewrites at most ``min_files``
    runs' output (the whole month only every ``min_files``-th time).
    """
    groups: dict[tuple[int, int], list[str]] = {}
    for year, month in sorted(set(touched)):
        owners = _lake_files(store, store.partition_files(year, month), runs)
        runs_files = [f for f, (_, _, run) in owners.items() if run not in compactions]
        if len(runs_files) < min_files:
            continue
        merged = len(owners) - len(runs_files)
        groups[(year, month)] = sorted(owners if merged + 1 >= min_files else runs_files)
    return groups


def _rewrite(
    store: LakeStore,
    groups: dict[tuple[int, int], list[str]],
    staging: Path,
    run_id: str,
    progress: Progress,
) -> list[PartitionCompaction]:
    """One sorted zstd file per partition in ``staging``, checked row for row by count."""
    import duckdb

    from clickstream.engines.duckdb import quote_literal

    done = []
    with duckdb.connect(str(staging / "compact.duckdb")) as con:
        con.execute(f"SET temp_directory = {quote_literal(str(staging / 'spill'))}")
        if s3.is_s3(store.root):
            s3.configure_duckdb(con)
        for i, ((year, month), files) in enumerate(groups.items()):
            progress(f"compacting year={year}/month={month}", i / len(groups))
            folder = staging / TABLE / LakeLayout.partition(year, month)
            folder.mkdir(parents=True)
            target = folder / f"{run_id}_0.parquet"
            listed = ", ".join(quote_literal(f) for f in files)
            # hive_partitioning off: the files hold exactly the lake columns (year/month live in
            # the folder names), and the rewrite must keep that schema byte for byte.
            source = f"read_parquet([{listed}], hive_partitioning = false)"
            row = con.execute(f"SELECT count(*) FROM {source}").fetchone()
            rows_in = int(row[0]) if row else 0
            con.execute(
                f"COPY (SELECT * FROM {source} ORDER BY event_time, event_id) "
                f"TO {quote_literal(str(target))} (FORMAT parquet, COMPRESSION zstd)"
            )
            row = con.execute(
                f"SELECT count(*) FROM read_parquet({quote_literal(str(target))})"
            ).fetchone()
            rows_out = int(row[0]) if row else -1
            if rows_out != rows_in:
                raise InvariantError(
                    f"compacting year={year}/month={month}: read {rows_in:,} rows but wrote "
                    f"{rows_out:,}; nothing was committed"
                )
            _write_index(con, target, staging / INDEX / LakeLayout.partition(year, month), run_id)
            done.append(PartitionCompaction(year, month, len(files), rows_in))
    (staging / "compact.duckdb").unlink(missing_ok=True)
    return done


def _write_index(con: Any, target: Path, folder: Path, run_id: str) -> None:
    """The new file's event-id index (``lake.index``), so later runs' duplicate checks read 16
    bytes per row instead of the compacted file's ids: without it, every run after a compaction
    would pay for the whole month."""
    from clickstream.engines.duckdb import quote_literal

    folder.mkdir(parents=True)
    con.execute(
        f"COPY (SELECT {ID_COLUMNS} FROM read_parquet({quote_literal(str(target))})) "
        f"TO {quote_literal(str(folder / target.name))} (FORMAT parquet, COMPRESSION zstd)"
    )


def stale_index(
    store: LakeStore, groups: dict[tuple[int, int], list[str]], runs: set[str]
) -> list[str]:
    """The index files a compaction makes stale: in each rewritten partition, those of committed
    ``runs`` with no data file left there (the replaced runs', and any an earlier compaction left
    behind). An index of a run that keeps a data file there is left, as is any file no committed
    run names (not the lake's: never deleted)."""
    out = []
    for (year, month), files in groups.items():
        rewritten = set(files)
        kept = {run_of(f) for f in store.partition_files(year, month) if f not in rewritten}
        out += [f for f in store.index_files(year, month) if run_of(f) in runs - kept]
    return sorted(out)


def _commit_local(store: LocalLake, run_id: str, report: RunReport, deletes: list[str]) -> None:
    """The local commit protocol of ``lake.commit``, with the replaced files as its deletes."""
    from clickstream.lake import commit

    layout = store.layout
    staged = commit.data_files(layout.staging(run_id) / TABLE)
    staged += commit.data_files(layout.staging(run_id) / INDEX)
    moves = [str(p.relative_to(layout.staging(run_id))) for p in staged]
    entry = {
        "run_id": run_id,
        "moves": [[rel, rel] for rel in moves],
        "deletes": deletes,
        "report": report.to_dict(),
    }
    fault("before_commit")
    commit.write_and_apply(layout, entry)


def _commit_s3(store: LakeStore, run_id: str, staging: Path, report: RunReport,
               deletes: list[str]) -> None:  # fmt: skip
    """The S3 protocol of ``lake.s3lake``: log, uploads, report (the commit point), deletes."""
    from clickstream.lake.s3lake import S3Lake, _upload

    assert isinstance(store, S3Lake)
    files = sorted((staging / TABLE).rglob("*.parquet")) + sorted(
        (staging / INDEX).rglob("*.parquet")
    )
    uploads = [str(p.relative_to(staging)) for p in files]
    log_key = store.key("_runs", f"{run_id}.commit.json")
    delete_keys = [store.key(rel) for rel in deletes]
    fault("before_commit")
    store._put_json(log_key, {"run_id": run_id, "uploads": uploads, "deletes": delete_keys})
    for i, path in enumerate(files):
        store._call("uploading " + uploads[i], _upload, Key=store.key(uploads[i]),
                    Filename=str(path))  # fmt: skip
        if i == 0:
            fault("mid_commit")
    store._put_json(store.key("_runs", f"{run_id}.json"), report.to_dict())
    fault("after_report")
    store._delete(delete_keys)
    store._delete([log_key])


def compact(
    lake: str,
    min_files: int = DEFAULT_MIN_FILES,
    progress: Progress = no_progress,
    touched: list[tuple[int, int]] | None = None,
) -> CompactionResult:
    """Rewrite every partition with at least ``min_files`` table files into one file.

    Idempotent: a second call finds every partition at one file and writes nothing.
    ``touched``: the partitions a run just wrote, compacted by ``tiered_plan`` instead.
    """
    if isinstance(min_files, bool) or min_files < 2:
        raise ConfigError(f"invalid --min-files {min_files} (2 or more)")
    started = time.perf_counter()
    store = open_store(lake)
    if not store.exists():  # a mistyped path must not become a lake folder (the lock's)
        raise LakeError(f"no lake at {lake} (run `clickstream etl` first)")
    result = CompactionResult()
    with store.lock():
        store.recover()
        # Refuses, like a run, while any run report is invalid.
        reports = store.reports()
        runs = {r.run_id for r in reports}
        if touched is None:
            groups = plan(store, min_files, runs)
        else:
            compactions = {r.run_id for r in reports if r.engine == ENGINE}
            groups = tiered_plan(store, touched, min_files, runs, compactions)
        if not groups:
            result.seconds = round(time.perf_counter() - started, 3)
            return result
        run_id = new_run_id()
        report = RunReport(
            run_id=run_id, engine=ENGINE, lake=store.root, started_at=datetime.now(UTC).isoformat()
        )
        deletes = [_relative(store, f) for files in groups.values() for f in files]
        deletes += [_relative(store, f) for f in stale_index(store, groups, runs)]
        report.compacted_runs = sorted(
            {
                m["run"]
                for files in groups.values()
                for f in files
                if (m := table_match(store.root, f))
            }
        )
        staging = store.new_staging(run_id)
        try:
            result.partitions = _rewrite(store, groups, staging, run_id, progress)
            report.finished_at = datetime.now(UTC).isoformat()
            report.seconds = round(time.perf_counter() - started, 3)
            report.check()
        except BaseException:
            store.discard_staging(run_id, staging)
            raise
        progress("committing", None)
        sessions = sessions_table.lake_state(store)
        if isinstance(store, LocalLake):
            # Staging is never discarded here: after the commit point, recover() rolls the
            # moves forward from it (and sweeps it afterwards).
            _commit_local(store, run_id, report, deletes)
        else:
            try:
                _commit_s3(store, run_id, staging, report, deletes)
            finally:  # a local scratch copy: S3 recovery never needs it
                store.discard_staging(run_id, staging)
        result.run_id = run_id
        # Compaction changes files, never a session: a table fresh before stays fresh.
        sessions_table.after_compaction(store, sessions)
    result.seconds = round(time.perf_counter() - started, 3)
    log.info("compacted %d partitions as run %s", len(result.partitions), run_id)
    return result


__all__ = [
    "DEFAULT_MIN_FILES",
    "CompactionResult",
    "PartitionCompaction",
    "compact",
    "plan",
    "stale_index",
    "tiered_plan",
]
