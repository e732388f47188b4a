"""The embedded engine: DuckDB runs the contract in SQL on its own CSV reader.

One pass applies the contract into an in-memory table (nothing persisted: DuckDB spills to the
run's staging folder only when ``memory_limit`` is reached); the small side results (counts per
file, quarantine, the drop list) come from it, then one COPY writes the lake and one the run's
event-id index. A killed run leaves nothing behind but staging.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from clickstream import s3
from clickstream.contract.dialects import DUCKDB
from clickstream.contract.rules import (
    LAKE_COLUMNS,
    PARTITION_NAMES,
    RAW_FIELDS,
    contract_select,
    truncated_raw,
)
from clickstream.engines.base import Progress, StageRequest, StageResult
from clickstream.engines.duckdb_rejects import (
    decode_undecodable,
    line_tables,
    malformed_select,
    numbered_rejects,
)
from clickstream.errors import ConfigError, EngineError, InputError
from clickstream.integrity import MAX_RECORD_BYTES
from clickstream.lake.files import lake_runs, writer_files
from clickstream.lake.index import ID_COLUMNS, dedupe_sources
from clickstream.lake.layout import INDEX
from clickstream.sources import SourceFile

log = logging.getLogger(__name__)

#: Peak RSS stays near this plus ~250 MB (CSV buffers, Parquet writers, Python): under 1 GiB at
#: any input size. A larger limit spills less (2GB: ~15% less CPU on 3M rows) but RSS follows it.
DEFAULT_MEMORY_LIMIT = "640MB"
#: DuckDB's per-record limit: above the census limit, so every line the census passes fits.
MAX_LINE_BYTES = MAX_RECORD_BYTES + 1024 * 1024


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def csv_scan(files: list[SourceFile], group: int) -> str:
    """A read_csv over same-layout files, exposing the raw_* columns and source_file."""
    field_count, positions = files[0].layout
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(field_count))
    names = list(RAW_FIELDS.values())
    assert len(positions) == len(names), "one header position per raw field"
    # Indexed, not zip(strict=True): that is 3.10, and the job's modules import this one.
    raw = ", ".join(f"c{positions[i]} AS {names[i]}" for i in range(len(names)))
    paths = ", ".join(quote_literal(f.path) for f in files)
    # Explicit dialect (no sniffing): RFC 4180 quoting, every field text. Broken rows are kept
    # in the rejects tables, not dropped silently.
    # Records up to the census limit (integrity.MAX_RECORD_BYTES) are read; a longer quoted
    # record is rejected as LINE SIZE OVER MAXIMUM (quarantined as malformed_csv).
    options = (
        f"max_line_size = {MAX_LINE_BYTES}, buffer_size = {4 * MAX_LINE_BYTES}, "
        "header = true, auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        f"columns = {{{columns}}}, filename = true, store_rejects = true, "
        f"rejects_table = 'reader_rejects_{group}', rejects_scan = 'reader_scans_{group}'"
    )
    return f"SELECT {raw}, filename AS source_file FROM read_csv([{paths}], {options})"


def _groups(sources: list[SourceFile]) -> list[list[SourceFile]]:
    """Same-layout files read by one scan; a file with an unclosed quote is read on its own.

    DuckDB 1.5 loses the rejects-table row of an unclosed quote (the record vanishes) when that
    file is one of five or more in a scan; read alone, it is rejected like any other.
    """
    by_layout: dict[tuple[int, tuple[int, ...]], list[SourceFile]] = defaultdict(list)
    alone: list[list[SourceFile]] = []
    for source in sources:
        if source.census is not None and source.census.open_quote:
            alone.append([source])
        else:
            by_layout[source.layout].append(source)
    return [*by_layout.values(), *alone]


#: A size DuckDB's memory_limit accepts: a positive number and a unit.
_MEMORY_RE = re.compile(r"^\s*([0-9]+(\.[0-9]+)?)\s*(B|[KMGT]i?B)\s*$", re.IGNORECASE)


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, memory_limit: str | None = None, threads: int | None = None) -> None:
        memory_limit = memory_limit or DEFAULT_MEMORY_LIMIT
        match = _MEMORY_RE.match(memory_limit)
        if not match or float(match.group(1)) <= 0:
            raise ConfigError(
                f"invalid memory limit '{memory_limit}' (--memory-limit takes a positive size "
                "such as 512MB or 4GB)"
            )
        if threads is not None and (isinstance(threads, bool) or threads < 1):
            raise ConfigError(f"invalid --threads {threads} (1 or more; 0 means all cores)")
        self.memory_limit = memory_limit.strip()
        self.threads = threads

    @contextmanager
    def _connect(self, staging: Path) -> Iterator[duckdb.DuckDBPyConnection]:
        # In memory: a database file cost ~1 s per 1M rows in writes nobody reads back.
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"SET memory_limit = {quote_literal(self.memory_limit)}")
        except duckdb.Error as err:
            raise EngineError(f"invalid memory limit '{self.memory_limit}': {err}") from err
        con.execute(f"SET temp_directory = {quote_literal(str(staging / 'spill'))}")
        # Insertion order gives each row's position in its file (for quarantine line numbers).
        con.execute("SET preserve_insertion_order = true")
        # Progress is ours to draw (query_progress needs tracking on, its own printing off).
        con.execute("SET enable_progress_bar = true")
        con.execute("SET enable_progress_bar_print = false")
        if self.threads:
            con.execute(f"SET threads = {int(self.threads)}")
        try:
            yield con
        finally:
            con.close()

    def stage(self, request: StageRequest, progress: Progress) -> StageResult:
        for source in request.sources:
            if source.census is not None and source.census.mixed_endings_at:
                # Its reader fails the whole scan with a page of parser state instead.
                raise InputError(
                    f"{source.path}: line {source.census.mixed_endings_at}: its line ending "
                    "(CRLF or LF) differs from the header's; DuckDB cannot read mixed line "
                    "endings: convert the file (dos2unix) or use --engine spark; nothing was "
                    "written"
                )
        with self._connect(request.staging) as con:
            if any(s3.is_s3(f.path) for f in request.sources) or s3.is_s3(request.lake.root):
                s3.configure_duckdb(con)
            try:
                return _Stager(con, request, progress).run()
            except duckdb.Error as err:
                raise s3.duckdb_http_error(err) or EngineError(f"DuckDB failed: {err}") from err


class _Stager:
    def __init__(
        self, con: duckdb.DuckDBPyConnection, request: StageRequest, progress: Progress
    ) -> None:
        self.con = con
        self.request = request
        self.progress = progress

    def _run_sql(self, label: str, sql: str) -> list[tuple[Any, ...]]:
        """Execute one statement, reporting DuckDB's own progress while it runs."""
        done = threading.Event()

        def poll() -> None:
            while not done.wait(0.2):
                pct = self.con.query_progress()
                self.progress(label, pct / 100 if pct >= 0 else None)

        watcher = threading.Thread(target=poll, daemon=True)
        self.progress(label, 0.0)
        watcher.start()
        t0 = time.perf_counter()
        try:
            return self.con.execute(sql).fetchall()
        finally:
            log.debug("%s: %.2fs", label, time.perf_counter() - t0)
            done.set()
            watcher.join()
            self.progress(label, 1.0)

    def run(self) -> StageResult:
        groups = _groups(self.request.sources)
        total = len(self.request.sources)
        scanned = 0
        for i, files in enumerate(groups):
            select = contract_select(csv_scan(files, i), DUCKDB)
            verb = "CREATE TABLE staged AS" if i == 0 else "INSERT INTO staged"
            scanned += len(files)
            self._run_sql(f"reading files {scanned}/{total}", f"{verb} {select}")
        self._reader_rejects(len(groups))
        # One scan for every per-file figure: rows, valid rows, and where the file starts.
        self.con.execute(
            "CREATE TABLE per_file AS SELECT source_file, min(rowid) AS r0, count(*) AS n, "
            "count(*) FILTER (WHERE reject_reason IS NULL) AS valid FROM staged GROUP BY ALL"
        )
        result = StageResult()
        result.rows_read_by_file = self._rows_by_file()
        self._check_undecodable_files(result.rows_read_by_file)
        result.rejected_by_reason, already_quarantined = self._write_rejected()
        valid = self.con.execute("SELECT coalesce(sum(valid), 0) FROM per_file").fetchone()
        self._dedupe()
        result.partitions = self._write_lake()
        result.rows_written = sum(result.partitions.values())
        result.rows_duplicate = (
            int(valid[0] if valid else 0) - result.rows_written + already_quarantined
        )
        return result

    def _reader_rejects(self, groups: int) -> None:
        """The ``malformed`` table: one row per record the CSV reader could not parse."""
        self.con.execute("CREATE TABLE malformed AS " + malformed_select(groups))
        decode_undecodable(self.con)

    def _check_undecodable_files(self, rows_read: dict[str, int]) -> None:
        """Name the cause where DuckDB's reader lost records of a file that is not UTF-8.

        DuckDB 1.5 drops the last records of a file in which most records are not UTF-8
        (latin-1, say): neither read nor rejected. The census would fail the run anyway; this
        says why, and what to do.
        """
        undecodable = dict(
            self.con.execute(
                "SELECT source_file, count(*) FROM malformed WHERE undecodable GROUP BY ALL"
            ).fetchall()
        )
        for source in self.request.sources:
            census, bad = source.census, undecodable.get(source.path, 0)
            if census is not None and bad and rows_read[source.path] < census.records:
                lost = census.records - rows_read[source.path]
                raise InputError(
                    f"{source.path}: {bad:,} records are not UTF-8 and DuckDB's reader lost "
                    f"{lost:,} more of them; convert the file to UTF-8 (iconv -f latin1 -t "
                    "utf-8) or use --engine spark; nothing was written"
                )

    def _rows_by_file(self) -> dict[str, int]:
        rows = self.con.execute(
            "SELECT source_file, sum(n) FROM (SELECT source_file, n FROM per_file "
            "UNION ALL SELECT source_file, 1 FROM malformed) GROUP BY ALL"
        ).fetchall()
        counts = {f.path: 0 for f in self.request.sources}
        counts.update({path: n for path, n in rows})
        return counts

    def _write_rejected(self) -> tuple[dict[str, int], int]:
        """Quarantine: rule rejects (line from file position) plus the reader's malformed rows.

        A record already quarantined by an earlier run (same file, line and raw text: a file
        that grew is read again from its start) is not written twice; it counts as a duplicate.
        Returns the new rejects by reason, and how many were already there.
        """
        target = self.request.staging / "clickstream_rejected" / f"{self.request.run_id}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        run_id = quote_literal(self.request.run_id)
        redact = truncated_raw(DUCKDB.redact_userinfo("rtrim(raw_line, chr(13) || chr(10))"))
        line_tables(self.con, self.request.sources)
        sql = "CREATE TABLE rejects AS " + numbered_rejects(redact, run_id)
        self._run_sql("checking quarantine", sql)
        fresh = "SELECT * FROM rejects"
        earlier = self.request.lake.rejected_files() if self.request.dedupe_against_lake else []
        if earlier:
            files = ", ".join(quote_literal(p) for p in earlier)
            ours = ", ".join(quote_literal(f.path) for f in self.request.sources)
            fresh += f"""
            WHERE (source_file, line_number, raw_line) NOT IN (
              SELECT (source_file, line_number, raw_line) FROM read_parquet([{files}])
              WHERE source_file IN ({ours}))"""
        self.con.execute(f"CREATE TABLE fresh_rejects AS {fresh}")
        self._run_sql(
            "writing quarantine",
            "COPY (SELECT * FROM fresh_rejects ORDER BY source_file, line_number) "
            f"TO {quote_literal(str(target))} (FORMAT parquet, COMPRESSION zstd)",
        )
        counts = self.con.execute(
            "SELECT reject_reason, count(*) FROM fresh_rejects GROUP BY ALL"
        ).fetchall()
        total = self.con.execute("SELECT count(*) FROM rejects").fetchone()
        by_reason = {reason: int(n) for reason, n in counts if n}
        return by_reason, (int(total[0]) if total else 0) - sum(by_reason.values())

    def _dedupe(self) -> None:
        """Collect the rows to drop: repeats within the run, and ids already in the lake.

        Ids are compared as two UBIGINTs (the index's form): hashing and joining 16 bytes is
        much cheaper than 32-character strings. The drop list is small, so the writes are a
        cheap anti-join on rowid.
        """
        self._run_sql(
            "finding duplicates",
            f"CREATE TABLE keys AS SELECT rowid AS rid, year, month, {ID_COLUMNS} FROM staged "
            "WHERE reject_reason IS NULL",
        )
        seen = self._lake_ids()
        self._run_sql(
            "checking the lake for duplicates",
            f"""CREATE TABLE drop_rows AS
            SELECT k.rid FROM keys k JOIN (
              SELECT h, l, min(rid) AS keep FROM keys GROUP BY h, l HAVING count(*) > 1
            ) d USING (h, l) WHERE k.rid <> d.keep
            UNION
            SELECT k.rid FROM keys k JOIN ({seen}) seen USING (h, l)""",
        )

    def _lake_ids(self) -> str:
        """The ids already in the partitions this run touches, from the index where it has them.

        A repeated event id always falls in the partition of its original (same fields, same
        event time), so the partitions this run writes are the only ones to look at.
        """
        none = "SELECT NULL::UBIGINT AS h, NULL::UBIGINT AS l WHERE FALSE"
        if not self.request.dedupe_against_lake:
            return none
        lake = self.request.lake
        index: list[str] = []
        whole: list[str] = []
        runs = lake_runs(lake.root)
        for year, month in self.con.execute("SELECT DISTINCT year, month FROM keys").fetchall():
            use_index, read_whole = dedupe_sources(
                writer_files(lake.root, lake.partition_files(year, month), runs),
                lake.index_files(year, month),
            )
            index += use_index
            whole += read_whole
        parts = []
        if index:
            files = ", ".join(quote_literal(p) for p in index)
            parts.append(f"SELECT h, l FROM read_parquet([{files}])")
        if whole:
            files = ", ".join(quote_literal(p) for p in whole)
            parts.append(f"SELECT {ID_COLUMNS} FROM read_parquet([{files}])")
        log.debug("duplicate check: %d index files, %d data files", len(index), len(whole))
        return " UNION ALL ".join(parts) or none

    def _write_lake(self) -> dict[tuple[int, int], int]:
        target = self.request.staging / "clickstream"
        columns = ", ".join((*LAKE_COLUMNS, *PARTITION_NAMES))
        pattern = quote_literal(f"{self.request.run_id}_{{i}}")
        partition_by = ", ".join(PARTITION_NAMES)
        sql = f"""
        COPY (
          SELECT {columns} FROM staged
          WHERE reject_reason IS NULL AND rowid NOT IN (SELECT rid FROM drop_rows)
        ) TO {quote_literal(str(target))} (
          FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({partition_by}),
          FILENAME_PATTERN {pattern}, RETURN_STATS true
        )
        """
        partitions: dict[tuple[int, int], int] = defaultdict(int)
        for row in self._run_sql("writing lake", sql):
            keys, count = row[5], row[1]
            if count:
                partitions[(int(keys["year"]), int(keys["month"]))] += int(count)
        # The index of what was just written, committed with it (see lake.index).
        self._run_sql(
            "writing the event-id index",
            f"""COPY (
              SELECT year, month, h, l FROM keys WHERE rid NOT IN (SELECT rid FROM drop_rows)
            ) TO {quote_literal(str(self.request.staging / INDEX))} (
              FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({partition_by}),
              FILENAME_PATTERN {pattern}
            )""",
        )
        return dict(partitions)
