"""The batch ETL, engine-independent: find inputs, skip what is ingested, stage, check, commit."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from clickstream import s3
from clickstream import sources as src
from clickstream.engines import get_engine
from clickstream.engines.base import Progress, StageRequest, no_progress
from clickstream.errors import InputError
from clickstream.integrity import take_census
from clickstream.lake import sessions_table
from clickstream.lake.layout import new_run_id
from clickstream.lake.report import (
    InputFileReport,
    PartitionReport,
    RunReport,
    SkippedFile,
    cut_short,
    ingested_keys,
)
from clickstream.lake.store import open_store

log = logging.getLogger(__name__)
#: ``datetime.UTC`` is 3.11; the Spark job runs on EMR 7's Python 3.9.
UTC = timezone.utc  # noqa: UP017


@dataclass(frozen=True)
class EtlOptions:
    input: str
    """A local file, folder or glob, or an s3:// URI or glob, as the user wrote it."""
    lake: str
    """Lake root: a local folder or an s3:// URI, as the user wrote it (never a Path)."""
    engine: str = "duckdb"
    full_refresh: bool = False
    memory_limit: str | None = None
    """DuckDB only: memory cap such as '2GB' (default 640MB; beyond it DuckDB spills)."""
    threads: int | None = None
    """DuckDB only: worker threads (default: all cores)."""
    master: str | None = None
    """Spark only: master URL (default: the spark-submit session, else local[*])."""


def run_etl(options: EtlOptions, progress: Progress = no_progress) -> RunReport:
    """Run the ETL once; returns the committed run report (or an empty one if nothing was new)."""
    started = time.perf_counter()
    # Every header is checked before anything is written: one bad file fails the whole run.
    sources, not_read = src.find_inputs(options.input)
    engine = get_engine(
        options.engine,
        memory_limit=options.memory_limit,
        threads=options.threads,
        master=options.master,
    )
    store = open_store(str(options.lake))
    run_id = new_run_id()
    report = RunReport(
        run_id=run_id,
        engine=engine.name,
        lake=store.root,
        started_at=datetime.now(UTC).isoformat(),
        full_refresh=options.full_refresh,
    )
    new_lake = not s3.is_s3(store.root) and not os.path.lexists(store.root)
    with store.lock(), _no_empty_lake_left(store.root, new_lake):
        store.recover()
        earlier = [] if options.full_refresh else store.reports()
        done = ingested_keys(earlier)
        new = [s for s in sources if s.key not in done]
        report.skipped_files = [s.path for s in sources if s.key in done]
        report.not_read = [SkippedFile(path, why) for path, why in not_read]
        cut = cut_short(earlier)
        resumed = {
            s.path: why
            for s in new
            if s.path in cut and (why := src.continues_cut_line(s, *cut[s.path]))
        }
        report.not_read += [SkippedFile(path, why) for path, why in resumed.items()]
        new = [s for s in new if s.path not in resumed]
        now = time.time_ns()
        waiting = {s.path: why for s in new if (why := src.still_being_written(s, now))}
        if waiting and options.full_refresh:
            # A full refresh replaces the lake with this run's inputs: none may be left out.
            path, why = next(iter(waiting.items()))
            raise InputError(
                f"{path}: {why}; run --full-refresh when it is complete; nothing was written"
            )
        report.not_read += [SkippedFile(path, why) for path, why in waiting.items()]
        new = [s for s in new if s.path not in waiting]
        if not new:
            report.finished_at = datetime.now(UTC).isoformat()
            if earlier:  # a table left stale by a crash is repaired even when nothing is new
                sessions_table.update_after_run(store, report, options.memory_limit)
            return report
        # Each new file is read once by an independent reader before the engine sees it: a file
        # that does not read to its end, or holds a record too large, fails the run here.
        progress("checking input files", None)
        censuses = take_census([s.path for s in new])
        new = [replace(s, census=censuses[s.path]) for s in new]
        staging = store.new_staging(run_id)
        try:
            result = engine.stage(
                StageRequest(run_id, new, store, staging, not options.full_refresh), progress
            )
            report.input_files = [
                InputFileReport(
                    s.path,
                    s.size,
                    s.mtime_ns,
                    result.rows_read_by_file.get(s.path, 0),
                    censuses[s.path].ends_with_newline,
                )
                for s in new
            ]
            for f in report.input_files:
                censuses[f.path].check(f.rows_read)
            report.rows_read = sum(f.rows_read for f in report.input_files)
            report.rows_written = result.rows_written
            report.rejected_by_reason = dict(sorted(result.rejected_by_reason.items()))
            report.rows_rejected = sum(result.rejected_by_reason.values())
            report.rows_duplicate = result.rows_duplicate
            report.partitions = [
                PartitionReport(y, m, n) for (y, m), n in sorted(result.partitions.items())
            ]
            report.seconds = round(time.perf_counter() - started, 3)
            report.rows_per_second = round(report.rows_read / report.seconds, 1)
            report.finished_at = datetime.now(UTC).isoformat()
            report.check()
            progress("committing", None)
            store.commit(run_id, staging, report, replace_all=options.full_refresh)
        except BaseException:
            store.discard_staging(run_id, staging)
            raise
        progress("updating the sessions table", None)
        sessions_table.update_after_run(store, report, options.memory_limit)
    return report


@contextmanager
def _no_empty_lake_left(root: str, new_lake: bool) -> Iterator[None]:
    """A failed run on a lake it created leaves no folder behind that holds only the lock.

    Removed while the lock is still held: another writer cannot be waiting on it (it gives up
    at once), so no two writers ever hold locks on different ``_lock`` files.
    """
    try:
        yield
    except BaseException:
        if new_lake:
            _remove_if_only_the_lock(root)
        raise


def _remove_if_only_the_lock(root: str) -> None:
    folders = []
    for folder, dirnames, filenames in os.walk(root):
        if any(os.path.islink(os.path.join(folder, d)) for d in dirnames):
            return
        if filenames not in ([], ["_lock"]) or (filenames and folder != root):
            return
        folders.append(folder)
    try:
        os.unlink(os.path.join(root, "_lock"))
        for folder in reversed(folders):  # os.walk lists parents first
            os.rmdir(folder)
    except OSError as err:  # best effort: the run's own error is the one to report
        log.debug("could not remove the new lake %s: %s", root, err)
