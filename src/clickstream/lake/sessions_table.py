"""The ``sessions`` view materialised in the lake, kept current by each run at commit time.

Layout (local lakes only; ``_`` keeps Hive-style readers away)::

    _sessions/_current.json          the pointer: runs and table files covered, layers in order
    _sessions/<20 hex>.parquet       layers: a base, then one delta per run

A layer holds the view's columns plus ``exit_event_id`` (the last page view's id, so two
sessions can be merged without reading their page views), ``rid`` (a row id unique among the
current layers) and ``removed``. A delta holds the sessions its run created or changed
(``removed`` false) and, for each older session those replace, a removal row carrying that
session's ``rid``. A session row is live unless a removal row names its ``rid``
(:func:`live_sql`): a reader pays one anti-join on an integer against the few removals.

A session is an aggregate that merges exactly: the first page view (least ``(time, id)``) gives
session_id, landing path and UTMs; the last gives the exit path; counts add. A run's new page
views change only sessions of the same visitor within 30 minutes of one of them (old sessions
of a visitor are separated by more than 30 minutes, so any merge passes through a new page
view). The run's page views and those sessions are merged again as intervals (a new session
starts where an interval begins more than 30 minutes after every earlier one ended) — the
rule of ``sessions.sql`` applied to intervals instead of points. No page view is read but the
run's own; the full build is the same merge over every page view as points.

Freshness is checked, never assumed: the pointer names every committed run and a digest of the
table's file names; a reader uses the table only when both equal the lake's now, else the view
is computed (slow, correct). The layers are written first and switched in by replacing the
pointer (an atomic rename): a crash anywhere leaves the old pointer, which then no longer
matches the lake, and the next run rebuilds the table whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickstream import s3
from clickstream.errors import CorruptMetadataError, is_interrupt
from clickstream.lake import rollups
from clickstream.lake.faults import fault
from clickstream.lake.files import committed_runs, writer_files
from clickstream.lake.layout import RUN_ID_PATTERN
from clickstream.lake.report import RunReport
from clickstream.lake.sessions_sql import (
    LAYER_COLUMNS,
    LAYER_TYPES,
    VIEW_COLUMNS,
    live_sql,
    merge_sql,
    points_merge_sql,
    points_sql,
)
from clickstream.sqltext import sql_list, sql_literal

log = logging.getLogger(__name__)

FOLDER = "_sessions"
POINTER = "_current.json"
FORMAT = 1
#: Deltas kept before the layers are consolidated into one base (amortised rewrite).
MAX_LAYERS = 24
#: The ETL's own default memory cap (``engines.duckdb.DEFAULT_MEMORY_LIMIT``), not imported from
#: there: that module would join the Spark job's import closure (Python 3.9, no duckdb).
MEMORY_LIMIT = "640MB"
#: Page views per base file of a full build (a 640MB memory limit holds a group's window).
REBUILD_ROWS = 2_000_000
#: Most layers a pointer may name.
MAX_POINTER_LAYERS = 1024
#: Largest pointer read back (a lake of ~100k runs fits).
MAX_POINTER_BYTES = 16 * 1024 * 1024
LAYER_NAME = re.compile(r"[0-9a-f]{20}\.parquet")


@dataclass(frozen=True)
class Pointer:
    runs: tuple[str, ...]
    table_files_sha256: str
    layers: tuple[str, ...]


# ---------------------------------------------------------------------------- state and pointer


#: A file's columns and DuckDB types, in order.
Layout = list[tuple[str, str]]


def files_digest(root: str, table_files: list[str]) -> str:
    """sha256 of the table's writer-named files, relative to the lake root, sorted."""
    base = root.rstrip("/") + "/"
    kept = sorted(f[len(base) :] for f in writer_files(root, table_files))
    return hashlib.sha256("\n".join(kept).encode()).hexdigest()


def files_have_layout(con: Any, files: list[str], layout: Layout) -> str | None:
    """None when every file has exactly ``layout`` (names and DuckDB types, in order), else the
    first that does not. Each file on its own: DuckDB reads a list with the first one's schema."""
    for path in files:
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_literal(path)})")
        if [tuple(r[:2]) for r in described.fetchall()] != [tuple(c) for c in layout]:
            return path
    return None


def table_files_by_layout(root: str, pointer: Pointer) -> list[tuple[list[str], Layout]]:
    """Every file of the table (layers, then each rollup's siblings) with the layout it must have.

    Raises CorruptMetadataError when one is missing or not a regular file of ``_sessions/``.
    """
    out = [(layer_paths(root, pointer), LAYER_TYPES)]
    for view in rollups.ROLLUPS:
        out.append((rollup_paths(root, pointer, view), rollups.layer_columns(view)))
    return out


def _strict_json(raw: bytes) -> Any:
    def no_constants(name: str) -> Any:
        raise ValueError(f"non-standard JSON number {name}")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ValueError(f"duplicate key {key!r}")
            out[key] = value
        return out

    return json.loads(raw.decode("utf-8"), parse_constant=no_constants,
                      object_pairs_hook=no_duplicates)  # fmt: skip


def parse_pointer(name: str, raw: bytes) -> Pointer:
    """The pointer, checked as untrusted input; CorruptMetadataError naming what is wrong."""
    try:
        if len(raw) > MAX_POINTER_BYTES:
            raise ValueError(f"larger than {MAX_POINTER_BYTES} bytes")
        data = _strict_json(raw)
        keys = {"format", "runs", "table_files_sha256", "layers"}
        if not isinstance(data, dict) or set(data) != keys:
            raise ValueError(f"not an object with exactly the keys {sorted(keys)}")
        if data["format"] != FORMAT or isinstance(data["format"], bool):
            raise ValueError(f"unknown format {data['format']!r}")
        runs, digest, layers = data["runs"], data["table_files_sha256"], data["layers"]
        if not isinstance(runs, list) or not all(
            isinstance(r, str) and RUN_ID_PATTERN.fullmatch(r) for r in runs
        ):
            raise ValueError("runs: not a list of run ids")
        if runs != sorted(set(runs)):
            raise ValueError("runs: not sorted and unique")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError("table_files_sha256: not a sha256 hex digest")
        if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_POINTER_LAYERS:
            raise ValueError(f"layers: not a list of 1 to {MAX_POINTER_LAYERS} names")
        if not all(isinstance(x, str) and LAYER_NAME.fullmatch(x) for x in layers):
            raise ValueError("layers: a name that no writer gives")
        if len(set(layers)) != len(layers):
            raise ValueError("layers: a name listed twice")
    except (ValueError, UnicodeDecodeError) as err:
        raise CorruptMetadataError(name, f"{name}: {err}; the sessions table is not used") from None
    return Pointer(tuple(runs), digest, tuple(layers))


def read_pointer(root: str) -> Pointer | None:
    """The pointer of a local lake, or None when there is none. Raises on a bad one."""
    folder = Path(root) / FOLDER
    path = folder / POINTER
    if not path.exists() and not path.is_symlink():
        return None
    if folder.is_symlink() or path.is_symlink() or not path.is_file():
        raise CorruptMetadataError(str(path), f"{path}: not a regular file in the lake")
    with open(path, "rb") as fh:
        raw = fh.read(MAX_POINTER_BYTES + 1)
    return parse_pointer(str(path), raw)


def layer_paths(root: str, pointer: Pointer) -> list[str]:
    """The pointer's layer files, each checked to be a regular file inside ``_sessions/``."""
    folder = Path(root) / FOLDER
    base = os.path.realpath(folder) + os.sep
    out = []
    for name in pointer.layers:
        path = folder / name
        if path.is_symlink() or not path.is_file() or not os.path.realpath(path).startswith(base):
            raise CorruptMetadataError(str(path), f"{path}: missing, or not a file of the lake")
        out.append(str(path))
    return out


def rollup_paths(root: str, pointer: Pointer, view: str) -> list[str]:
    """The ``view`` rollup's sibling of every layer of ``pointer``, each checked as a layer is.

    A lake written before the rollups existed has none: CorruptMetadataError, as for any gap.
    """
    named = Pointer(pointer.runs, pointer.table_files_sha256,
                    tuple(Path(rollups.sibling(n, view)).name for n in pointer.layers))  # fmt: skip
    return layer_paths(root, named)


# --------------------------------------------------------------------------------- maintenance


#: The page-view columns the table and its rollups read, with their DuckDB types.
EVENT_TYPES: tuple[tuple[str, str], ...] = tuple(
    {
        "anonymous_user_id": "VARCHAR",
        "event_id": "VARCHAR",
        "event_time": "TIMESTAMP",
        "url_path": "VARCHAR",
        "utm_source": "VARCHAR",
        "utm_medium": "VARCHAR",
        "utm_campaign": "VARCHAR",
        **{c: t for keys in rollups.ROLLUPS.values() for c, t in keys},
    }.items()
)


def _events_sql(files: list[str]) -> str:
    if not files:
        empty = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in EVENT_TYPES)
        return f"(SELECT {empty} WHERE FALSE)"
    return (
        f"(SELECT {', '.join(c for c, _ in EVENT_TYPES)} FROM read_parquet({sql_list(files)}, "
        "hive_partitioning = false, union_by_name = true))"
    )


def _connect(spill: Path, memory_limit: str | None) -> Any:
    import duckdb

    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})  # fmt: skip
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET temp_directory = {sql_literal(str(spill))}")
    con.execute(f"SET memory_limit = {sql_literal(memory_limit or MEMORY_LIMIT)}")
    con.execute("SET preserve_insertion_order = false")
    return con


def _write(con: Any, folder: Path, seq: int, live: str, removals: str | None = None) -> str:
    """A new layer file: ``live`` sessions, each with a new ``rid`` (this layer's position in
    the pointer, then a row number: unique among the current layers), and the removal rows
    ``removals`` (the ``rid`` of each session they replace)."""
    name = f"{secrets.token_hex(10)}.parquet"
    rows = (
        f"SELECT *, CAST({seq} AS BIGINT) * 4294967296 + row_number() OVER () AS rid, "
        f"FALSE AS removed FROM ({live})"
    )
    if removals:
        rows = f"{rows} UNION ALL BY NAME {removals}"
    con.execute(
        f"COPY (SELECT {', '.join(LAYER_COLUMNS)} FROM ({rows})) "
        f"TO {sql_literal(str(folder / name))} (FORMAT parquet, COMPRESSION zstd)"
    )
    return name


def _no_null_paths(con: Any, events: str) -> bool:
    """``url_path`` is never NULL by contract ('/' when none); merging relies on it."""
    row = con.execute(f"SELECT count(*) FROM {events} WHERE url_path IS NULL").fetchone()
    return bool(row) and int(row[0]) == 0


def _switch(folder: Path, pointer: Pointer, keep: tuple[str, ...]) -> None:
    from clickstream.lake.commit import write_json_atomic

    fault("sessions_before_switch")
    target = folder / POINTER
    if target.is_dir() and not target.is_symlink():  # in the way of the rename: not a pointer
        shutil.rmtree(target)
    data = {
        "format": FORMAT,
        "runs": list(pointer.runs),
        "table_files_sha256": pointer.table_files_sha256,
        "layers": list(pointer.layers),
    }
    write_json_atomic(folder / POINTER, data)
    # Layers no pointer names any more (and those of a crashed update) are removed; the previous
    # pointer's are kept one more generation for readers that opened the lake just before.
    live = set(pointer.layers) | set(keep)
    for path in folder.iterdir():
        owner = rollups.is_sibling_name(path.name) or path.name
        if path.name != POINTER and owner not in live and not path.is_dir():
            path.unlink(missing_ok=True)


def update(store: Any, report: RunReport, memory_limit: str | None = None) -> str:
    """Bring the table up to date after ``report``'s run committed (under the lake lock).

    Also after a run that committed nothing, to repair a stale table. Returns what was done:
    'skipped' (S3 lake), 'fresh' (nothing to do), 'incremental', 'rebuilt' or 'dropped'.
    """
    if s3.is_s3(store.root):
        return "skipped"
    root = store.root
    folder = Path(root) / FOLDER
    if folder.is_symlink():
        raise CorruptMetadataError(str(folder), f"{folder} is a symbolic link; not written")
    folder.mkdir(exist_ok=True)
    table_files = writer_files(root, store.table_files())
    runs = committed_runs(root)
    state = Pointer(tuple(runs), files_digest(root, table_files), ())
    own = [f for f in table_files if Path(f).name.startswith(report.run_id + "_")]
    before = Pointer(
        tuple(r for r in runs if r != report.run_id),
        files_digest(root, [f for f in table_files if f not in own]),
        (),
    )
    try:
        old = read_pointer(root)
        old_files = table_files_by_layout(root, old) if old else []
    except CorruptMetadataError as err:
        log.warning("%s; rebuilding it", err)
        old, old_files = None, []
    old_layers = old_files[0][0] if old_files else []
    covers = (old.runs, old.table_files_sha256) if old else None
    # A run that committed nothing (all its inputs ingested) repairs a stale table, no more.
    fresh_now = covers == (state.runs, state.table_files_sha256) and report.run_id not in runs
    fresh_before = (
        old is not None
        and not report.full_refresh
        and (fresh_now or covers == (before.runs, before.table_files_sha256))
    )
    import duckdb

    spill = folder / f"spill-{secrets.token_hex(4)}"
    con = _connect(spill, memory_limit)
    try:
        if fresh_before:
            # Every file exactly as written (a reader refuses any other, so a file that is not
            # would never be repaired, and merging would cast it into the table).
            try:
                found = (files_have_layout(con, f, lay) for f, lay in old_files)
                bad = next((b for b in found if b is not None), None)
            except duckdb.InterruptException:
                raise
            except duckdb.Error as err:  # not Parquet at all
                bad = str(err).splitlines()[0]
            if bad is not None:
                log.warning("%s: not a file of the sessions table; rebuilding it", bad)
                fresh_before = False
            elif fresh_now:
                return "fresh"
        if fresh_before and old is not None:
            try:
                layers = _incremental(con, folder, old_layers, _events_sql(own))
            except duckdb.InterruptException:
                raise
            except duckdb.Error as err:  # a damaged layer: the whole table is rebuilt
                log.warning("sessions table unreadable (%s); rebuilding it", str(err)[:200])
                layers = None
            if layers is not None:
                if len(layers) > MAX_LAYERS:
                    live = f"SELECT * EXCLUDE (rid) FROM ({live_sql(layers, extra=True)})"
                    merged = str(folder / _write(con, folder, 0, live))
                    rollups.write_consolidated(con, merged, layers)
                    layers = [merged]
                names = tuple(Path(p).name for p in layers)
                _switch(folder, Pointer(state.runs, state.table_files_sha256, names), old.layers)
                return "incremental"
        events = _events_sql(table_files)
        if not _no_null_paths(con, events):
            (folder / POINTER).unlink(missing_ok=True)
            return "dropped"
        base = _rebuild(con, folder, events)
        _switch(folder, Pointer(state.runs, state.table_files_sha256, base),
                old.layers if old else ())  # fmt: skip
        return "rebuilt"
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _rebuild(con: Any, folder: Path, events: str) -> tuple[str, ...]:
    """The table from every page view, in base layers of whole visitors (bounded memory).

    DuckDB's window over all page views does not stay within a small memory limit, so visitors
    are split by hash into groups of about REBUILD_ROWS page views, one file each (a base layer
    removes nothing, so their order does not matter).
    """
    row = con.execute(f"SELECT count(*) FROM {events}").fetchone()
    groups = max(1, -(-int(row[0] if row else 0) // REBUILD_ROWS))
    names = []
    for g in range(groups):
        # Each group is read from the lake once, then serves the sessions and every rollup.
        where = "TRUE" if groups == 1 else f"hash(anonymous_user_id) % {groups} = {g}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE build_group AS SELECT * FROM {events} "
                    f"WHERE {where}")  # fmt: skip
        name = _write(con, folder, g, points_merge_sql("build_group"))
        rollups.write_base(con, str(folder / name), "build_group")
        names.append(name)
    con.execute("DROP TABLE IF EXISTS build_group")
    return tuple(names)


def update_after_run(store: Any, report: RunReport, memory_limit: str | None = None) -> str:
    """:func:`update`, its failure logged instead of raised: the run is already committed, and
    a table left stale is never read (readers check), only slower until the next run rebuilds it."""
    try:
        return update(store, report, memory_limit)
    except Exception as err:
        if is_interrupt(err):  # DuckDB's Ctrl-C: the user's
            raise KeyboardInterrupt from None
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        log.warning("sessions table not updated (%s); computed until the next run", why)
        return "failed"


def _incremental(con: Any, folder: Path, layers: list[str], events: str) -> list[str] | None:
    """The layers after one run's page views: the old ones plus a delta (none if no rows).

    None when the merge cannot be exact (a page view without a path): rebuild instead.
    """
    live = live_sql(layers, extra=True)
    expected = [*VIEW_COLUMNS, ("exit_event_id", "VARCHAR"), ("rid", "BIGINT")]
    if [(r[0], r[1]) for r in con.execute(f"DESCRIBE {live}").fetchall()] != expected:
        return None
    if not _no_null_paths(con, events):
        return None
    con.execute(f"CREATE TEMP TABLE new_events AS SELECT * FROM {events}")
    row = con.execute("SELECT count(*) FROM new_events").fetchone()
    if not row or int(row[0]) == 0:
        return layers
    con.execute(
        "CREATE TEMP TABLE touched AS SELECT DISTINCT anonymous_user_id, "
        f"{VISITOR_HASH.format('anonymous_user_id')} AS vh FROM new_events"
    )
    touched = f"{VISITOR_HASH.format('l.anonymous_user_id')} IN (SELECT vh FROM touched)"
    # The touched visitors' sessions, only the columns that find those within 30 minutes of one
    # of the run's page views (DuckDB reads every column of every row before a join, so the
    # whole rows are read only for those few; joined on the few left, as it plans it badly on
    # the scan). Found by a hash of the visitor (an integer join), then exactly: a stored
    # visitor that only shares a run's visitor's hash is dropped.
    keys = ("anonymous_user_id", "session_start", "session_end", "rid")
    con.execute(f"CREATE TEMP TABLE near AS {live_sql(layers, where=touched, columns=keys)}")
    others = "anonymous_user_id NOT IN (SELECT anonymous_user_id FROM touched)"
    con.execute(f"DELETE FROM near WHERE {others}")
    con.execute(
        """CREATE TEMP TABLE affected_rids AS
        SELECT DISTINCT s.rid, s.session_start FROM near s JOIN new_events e
          ON e.anonymous_user_id = s.anonymous_user_id
         AND e.event_time BETWEEN s.session_start - INTERVAL 30 MINUTE
                              AND s.session_end + INTERVAL 30 MINUTE"""
    )
    affected = live_sql(layers, extra=True, where=_rids_in(con))
    con.execute(f"CREATE TEMP TABLE affected AS {affected}")
    sessions_cols = ", ".join(
        [
            "anonymous_user_id",
            "session_id",
            "session_start",
            "session_end",
            "pageviews",
            "landing_path",
            "exit_path",
            "exit_event_id",
            "utm_source",
            "utm_medium",
            "utm_campaign",
        ]  # fmt: skip
    )
    elements = (
        f"SELECT {sessions_cols} FROM affected UNION ALL "
        f"SELECT {sessions_cols} FROM ({points_sql('new_events')})"
    )
    removals = (
        "SELECT anonymous_user_id, session_id, session_start, rid, TRUE AS removed FROM affected"
    )
    delta = str(folder / _write(con, folder, len(layers), merge_sql(elements), removals))
    # Visitors with stored sessions are the only ones with stored (group, visitor) pairs.
    con.execute("CREATE TEMP TABLE known AS SELECT DISTINCT anonymous_user_id FROM near")
    rollups.write_delta(con, delta, layers, "new_events", "known")
    return [*layers, delta]


#: The hash that finds a run's visitors' stored sessions (then compared exactly).
VISITOR_HASH = "hash({})"

#: Most affected sessions fetched by a list of ids in the query: DuckDB tests a constant list in
#: the scan (0.07 s for 2,000 ids on a 10M-row lake), a join only after reading every row (0.3 s).
MAX_LISTED_RIDS = 2000


def _rids_in(con: Any) -> str:
    """The filter of the sessions named by ``affected_rids``: FALSE for none (no scan at all)."""
    rids = con.execute(
        f"SELECT rid FROM affected_rids ORDER BY rid LIMIT {MAX_LISTED_RIDS + 1}"
    ).fetchall()
    if not rids:
        return "FALSE"
    if len(rids) <= MAX_LISTED_RIDS:  # our own BIGINTs, printed by int()
        return f"l.rid IN ({', '.join(str(int(r[0])) for r in rids)})"
    # Their start times' range, a constant DuckDB tests in the scan: the runs of a day touch a
    # day's sessions, so whole rows are read for those only (the join still picks the ids).
    row = con.execute("SELECT min(session_start), max(session_start) FROM affected_rids")
    first, last = (t.isoformat(sep=" ") for t in row.fetchone())  # our own TIMESTAMPs
    bounds = f"TIMESTAMP '{first}' AND TIMESTAMP '{last}'"
    return f"l.session_start BETWEEN {bounds} AND l.rid IN (SELECT rid FROM affected_rids)"


def lake_state(store: Any) -> tuple[list[str], str] | None:
    """(committed runs, table files digest) of a local lake; None on S3 (not maintained)."""
    if s3.is_s3(store.root):
        return None
    return committed_runs(store.root), files_digest(store.root, store.table_files())


def after_compaction(store: Any, before: tuple[list[str], str] | None) -> None:
    """Carry a fresh table over a compaction (it changes files, never a session)."""
    if before is None or s3.is_s3(store.root):
        return
    before_runs, before_digest = before
    root = store.root
    try:
        old = read_pointer(root)
    except CorruptMetadataError as err:
        log.warning("%s", err)
        return
    if old is None or (list(old.runs), old.table_files_sha256) != (before_runs, before_digest):
        return  # stale already: the next run rebuilds it
    digest = files_digest(root, store.table_files())
    pointer = Pointer(tuple(committed_runs(root)), digest, old.layers)
    _switch(Path(root) / FOLDER, pointer, old.layers)


__all__ = [
    "EVENT_TYPES",
    "FOLDER",
    "LAYER_TYPES",
    "VIEW_COLUMNS",
    "Pointer",
    "after_compaction",
    "committed_runs",
    "files_digest",
    "files_have_layout",
    "lake_state",
    "layer_paths",
    "live_sql",
    "merge_sql",
    "read_pointer",
    "rollup_paths",
    "update",
    "update_after_run",
    "writer_files",
]
