"""Open a lake for querying in DuckDB: its tables and views, read-only and fenced in.

Two independent layers:

1. The statement fence (``query.fence``): only SELECTs (and EXPLAIN of one) run, and no table
   function that runs SQL text or changes the session.
2. The connection itself, configured before anything user-written is even parsed:
   ``autoinstall_known_extensions`` and ``autoload_known_extensions`` off at connect time (a
   query never downloads or loads an extension; httpfs is loaded by path for an S3 lake),
   Python replacement scans off, external access off with ``allowed_paths`` set to the exact
   data files of the lake (listed here, symlinks that lead out of the lake left out) plus the
   user's ``--allow-path`` entries, credentials only in a TEMPORARY secret (DuckDB shows it
   redacted), the ``s3_*`` settings empty, then ``lock_configuration``.

Readers never modify the lake: a lake with a commit log in ``_runs/`` (a run committing now, or
one that was interrupted) is refused in one line; the next writer finishes or undoes it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from clickstream import s3
from clickstream.errors import LakeError, QueryError
from clickstream.lake.files import lake_runs, writer_files
from clickstream.lake.layout import REJECTED_TABLE, RUN_ID_PATTERN, TABLE
from clickstream.lake.store import LakeStore, open_store
from clickstream.query import fence
from clickstream.query.ddl import duckdb_statements
from clickstream.query.materialized import use_if_fresh
from clickstream.query.output import unprintable
from clickstream.sqltext import sql_list, sql_literal
from clickstream.stream.tables import STREAM_FACTS, stream_fact_files

#: Settings fixed when the connection is created, before any SQL can run.
CONNECT_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "python_enable_replacements": False,
}

#: Rows fetched per Arrow batch when streaming a result.
BATCH_ROWS = 10_000


#: (The table's files are checked by ``writer_files``: the writer's exact form, committed runs.)
_WRITER_NAMES = {
    REJECTED_TABLE: re.compile(rf"{REJECTED_TABLE}/{RUN_ID_PATTERN.pattern}(_[0-9]+)?\.parquet"),
}


def _run_of_rejected(path: str) -> str | None:
    match = RUN_ID_PATTERN.match(os.path.basename(path))
    return match.group(0) if match else None


def base_tables(store: LakeStore) -> dict[str, str | list[str]]:
    """The base tables over the lake's committed data files (an explicit list of each).

    Every local file is checked here, whoever listed it: a symlink, or a file whose real path is
    outside the lake, is left out (these paths become the session's ``allowed_paths``).
    """
    tables: dict[str, list[str]] = {
        TABLE: store.table_files(),
        REJECTED_TABLE: store.rejected_files(),
        STREAM_FACTS: stream_fact_files(store),  # the stream's statistics (clickstream.stream)
    }
    if s3.is_s3(store.root):
        return dict(tables)
    root = os.path.realpath(store.root) + os.sep

    def kept(name: str, path: str) -> bool:
        if os.path.islink(path) or not os.path.realpath(path).startswith(root):
            return False
        # Only files named as a writer names them: a stray or hostile file dropped into the
        # lake (another name, quotes, control characters, '=') is neither read nor allowed.
        pattern = _WRITER_NAMES.get(name)
        return pattern is None or bool(pattern.fullmatch(os.path.relpath(path, store.root)))

    out = {name: [f for f in files if kept(name, f)] for name, files in tables.items()}
    # Table files also only of committed runs, in the writer's exact form (no 'month=01');
    # quarantine files too only of committed runs.
    runs = lake_runs(store.root)
    out[TABLE] = writer_files(store.root, out[TABLE], runs)
    out[REJECTED_TABLE] = [
        f for f in out[REJECTED_TABLE] if runs is None or _run_of_rejected(f) in runs
    ]
    return dict(out)


def define_views(con: Any, tables: dict[str, str | list[str]]) -> None:
    for statement in duckdb_statements(tables):
        con.execute(statement)


def check_readable(store: LakeStore, lake: str) -> None:
    if not store.exists():
        raise LakeError(f"no lake at {lake} (run `clickstream etl` or `clickstream demo` first)")
    pending = store.pending_commits()
    if pending:
        raise LakeError(
            f"{pending[0]}: a run is committing to this lake, or was interrupted; readers never "
            "change the lake: retry in a moment, and if it stays, the next `clickstream etl` on "
            "this lake finishes or undoes that commit"
        )


def _allowed(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[str]]:
    """--allow-path entries as (folders, files), absolute and with symlinks resolved."""
    folders, files = [], []
    for entry in paths:
        text = os.fspath(entry)
        if "://" in text:
            raise QueryError(f"--allow-path {text}: only local files and folders can be allowed")
        real = os.path.realpath(os.path.expanduser(text))
        if os.path.isdir(real):
            folders.append(real.rstrip("/") + "/")
        else:
            files.append(real)
    return folders, files


def _clear_s3_settings(con: Any) -> None:
    """Credentials live only in the temporary secret: no s3_* setting may hold one."""
    rows = con.execute(
        "SELECT name FROM duckdb_settings() WHERE name IN ('s3_access_key_id', "
        "'s3_secret_access_key', 's3_session_token') AND coalesce(value, '') <> ''"
    ).fetchall()
    for (name,) in rows:
        con.execute(f"SET {name} = ''")


class LakeSession:
    """A fenced, in-memory DuckDB connection over one lake. Close it (or use ``with``)."""

    def __init__(
        self,
        lake: str | os.PathLike[str],
        allow_paths: Sequence[str | os.PathLike[str]] = (),
        exact_arrow: bool = False,
    ) -> None:
        self._location = os.fspath(lake)
        self._allow_paths = tuple(allow_paths)
        self._exact_arrow = exact_arrow
        self._open()

    def _open(self) -> None:
        """Lists the lake and defines the views; a compaction or a run replacing files while
        that happens (DuckDB then finds a listed file gone) is met by listing again."""
        import duckdb

        for _ in range(_OPEN_ATTEMPTS):
            try:
                self._open_once()
                return
            except duckdb.Error as err:
                if not _about_files(err):
                    raise QueryError(_message(err)) from None
        raise LakeError(
            f"{self._location}: the lake kept changing while the session opened (files "
            f"replaced by runs or compactions, {_OPEN_ATTEMPTS} tries); try again"
        )

    def _open_once(self) -> None:
        import duckdb

        location = self._location
        store = open_store(location)
        check_readable(store, location)
        folders, files = _allowed(self._allow_paths)
        tables = base_tables(store)
        check_readable(store, location)  # again: a commit that began while we listed files
        # Spill space for big sorts: private, removed on close (and at exit, whatever happens).
        self._spill = tempfile.mkdtemp(prefix="clickstream-sql-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._spill, True)
        self.con: Any = duckdb.connect(config=dict(CONNECT_CONFIG))
        self.sessions_layers: list[str] = []
        """The materialised sessions table's files when ``sessions`` reads it (else computed)."""
        self.materialised: dict[str, list[str]] = {}
        """View -> the table files it reads, for each view answered from the materialised table."""
        self._listed: list[str] = []
        """The lake's files this session reads (local lakes): gone ones mean the lake changed."""
        try:
            self._configure(store, tables, folders, files)
        except BaseException:
            self.close()
            raise
        self.table_functions = fence.table_function_names(self.con)

    def stale(self) -> bool:
        """True when files this session listed are gone: a compaction or a ``--full-refresh``
        run replaced them after it opened (the session then answers nothing until reopened)."""
        return any(not os.path.exists(p) for p in self._listed)

    def reopen(self) -> None:
        """Lists the lake again (after :meth:`stale`): the same session, on the lake as it is."""
        self.close()
        self._open()

    @property
    def closed(self) -> bool:
        return getattr(self, "con", None) is None

    def _error(self, err: Exception) -> QueryError:
        if _about_files(err) and self.stale():
            return QueryError(
                "the lake changed while this session was open: files it had listed were "
                "replaced (by `clickstream compact`, a run's automatic compaction or a "
                "--full-refresh run); run the query again"
            )
        return QueryError(_message(err))

    def _configure(
        self,
        store: LakeStore,
        tables: dict[str, str | list[str]],
        folders: list[str],
        files: list[str],
    ) -> None:
        con = self.con
        con.execute("SET GLOBAL TimeZone = 'UTC'")  # GLOBAL: cursors of this session too
        if s3.is_s3(store.root):
            s3.configure_duckdb(con)  # LOAD httpfs by path; a TEMPORARY secret from the chain
            _clear_s3_settings(con)
        define_views(con, tables)
        data = [f for f in tables.values() if isinstance(f, list)]
        table = tables[TABLE]
        # The materialised sessions table, read only when it covers exactly these files.
        if isinstance(table, list):
            used = use_if_fresh(con, store.root, table)
            self.materialised = used.views
            self.sessions_layers = used.views.get("sessions", [])
            data.append(used.files)
        allowed_files = [p for group in data for p in group] + files
        if not s3.is_s3(store.root):
            self._listed = [p for group in data for p in group]
        if self._exact_arrow:
            # DuckDB's own types (UHUGEINT, TIME WITH TIME ZONE, BIT, ...) reach Arrow as
            # themselves, not as the nearest Arrow type (a UHUGEINT above 2**127 would wrap).
            con.execute("SET arrow_lossless_conversion = true")
        con.execute(f"SET temp_directory = {sql_literal(self._spill)}")
        con.execute(f"SET allowed_paths = {sql_list(allowed_files)}")
        con.execute(f"SET allowed_directories = {sql_list(folders)}")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")

    def statements(self, sql: str) -> list[fence.Statement]:
        return fence.check(self.con, sql, self.table_functions)

    def execute(self, sql: str) -> Any:
        """Run ``sql`` (every statement fenced first); the DuckDB result of the last one."""
        import duckdb

        statements = self.statements(sql)
        result = None
        try:
            for statement in statements:
                result = self.con.execute(statement.sql)
        except duckdb.Error as err:
            raise self._error(err) from None
        return result

    def sql(self, sql: str) -> Any:
        """One fenced statement as a DuckDB relation (for notebooks: ``.df()``, ``.arrow()``)."""
        import duckdb

        statements = self.statements(sql)
        if len(statements) != 1:
            raise QueryError("give exactly one statement")
        try:
            return self.con.sql(statements[0].sql)
        except duckdb.Error as err:
            raise self._error(err) from None

    def batches(self, sql: str, rows: int = BATCH_ROWS) -> tuple[list[str], Iterator[Any]]:
        """Column names and an iterator of Arrow record batches of the last statement."""
        import duckdb
        import pyarrow as pa

        result = self.execute(sql)
        try:
            reader = result.to_arrow_reader(rows)
        except duckdb.Error as err:
            raise self._error(err) from None
        except (pa.ArrowException, OSError) as err:  # a type Arrow has no form for (VARIANT)
            raise unprintable(_message(err)) from None
        return list(reader.schema.names), self._guarded(reader)

    def _guarded(self, reader: Any) -> Iterator[Any]:
        import duckdb
        import pyarrow as pa

        try:
            yield from reader
        except duckdb.Error as err:
            raise self._error(err) from None
        except (pa.ArrowException, OSError) as err:
            raise unprintable(_message(err)) from None

    def close(self) -> None:
        con = getattr(self, "con", None)
        if con is not None:
            con.close()
            self.con = None
        self._cleanup()

    def __enter__(self) -> LakeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Times a session lists the lake before it gives up on a lake that keeps changing.
_OPEN_ATTEMPTS = 3

#: What DuckDB says when a file it was given is gone (or, with external access off, when it
#: then looks for it as a folder).
_FILE_GONE = ("No files found", "No such file", "Cannot open file", "file system operations")


def _about_files(err: Exception) -> bool:
    text = str(err)
    return any(marker in text for marker in _FILE_GONE)


def _message(err: Exception) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    message = lines[0] if lines else type(err).__name__
    if "Permission Error" in message or "external access" in message.lower():
        message += " (a query reads only the lake; reading other files needs --allow-path)"
    return message


def open_lake(
    lake: str | os.PathLike[str],
    allow_paths: Sequence[str | os.PathLike[str]] = (),
    exact_arrow: bool = False,
) -> LakeSession:
    """A fenced session over the lake (a local folder or an s3:// URI, as the user typed it).

    ``exact_arrow``: results in Arrow carry DuckDB's own types as extensions (for printers
    that hand them back to DuckDB); notebooks keep the plain Arrow types pandas knows."""
    return LakeSession(lake, allow_paths, exact_arrow)


def run_query(session: LakeSession, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run fenced SQL and return the last statement's columns and every row (small results)."""
    result = session.execute(sql)
    columns = [d[0] for d in result.description] if result.description else []
    return columns, result.fetchall()


__all__ = ["LakeSession", "open_lake", "run_query"]
