"""Open a lake for querying in DuckDB: its tables and views, read-only and fenced in.

Safety: only read statements are accepted (DuckDB's own parser classifies them), and file access
is limited to the lake (plus paths the user explicitly allows), with the configuration locked so
a query cannot lift the fence.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import duckdb

from clickstream import s3
from clickstream.contract.schema import REJECTED_COLUMNS
from clickstream.errors import LakeError, QueryError
from clickstream.lake.layout import LakeLayout
from clickstream.lake.store import LakeStore, LocalLake, open_store
from clickstream.query.views import VIEW_NAMES, view_sql

#: Statement types a query may use: reading only.
READ_ONLY = {"SELECT", "EXPLAIN", "PRAGMA"}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def table_sql(store: LakeStore) -> dict[str, str]:
    """SELECTs for the two base tables over the lake's files (absolute paths or URIs)."""
    table_glob = store.table_uri + "/**/*.parquet"
    tables = {
        # union_by_name tolerates files written by earlier schema versions (missing columns: NULL).
        "clickstream": f"SELECT * FROM read_parquet({_literal(table_glob)}, "
        "hive_partitioning = true, union_by_name = true)",
    }
    if store.rejected_files():
        rejected_glob = store.rejected_uri + "/*.parquet"
        tables["clickstream_rejected"] = (
            f"SELECT * FROM read_parquet({_literal(rejected_glob)}, union_by_name = true)"
        )
    else:
        cols = ", ".join(f"CAST(NULL AS {c.type}) AS {c.name}" for c in REJECTED_COLUMNS)
        tables["clickstream_rejected"] = f"SELECT {cols} WHERE FALSE"
    return tables


def define_views(con: duckdb.DuckDBPyConnection, store: LakeStore) -> None:
    for name, sql in table_sql(store).items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    for name in VIEW_NAMES:
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {view_sql(name)}")


def open_lake(lake: str | Path, allow_paths: Sequence[Path] = ()) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the lake's tables and views, fenced to the lake."""
    store = open_store(lake)
    if isinstance(store, LocalLake):
        if not store.layout.table.exists():
            raise LakeError(
                f"no lake at {lake} (run `clickstream etl` or `clickstream demo` first)"
            )
        _finish_interrupted_commits(store.layout)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if s3.is_s3(store.root):
        s3.configure_duckdb(con)
    define_views(con, store)
    allowed = [store.root + "/", *(str(p.absolute()) for p in allow_paths)]
    spill = tempfile.mkdtemp(prefix="clickstream-sql-")
    con.execute(f"SET temp_directory = {_literal(spill)}")
    con.execute(f"SET allowed_directories = [{', '.join(_literal(a) for a in allowed)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _finish_interrupted_commits(layout: LakeLayout) -> None:
    """Readers never see a half-applied commit: roll it forward first when we can."""
    if not list(layout.runs.glob("*.commit.json")):
        return
    from clickstream.lake.commit import lake_lock, recover

    try:
        with lake_lock(layout):
            recover(layout)
    except LakeError:
        pass  # a writer holds the lock; it recovers before it writes


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but reading statements, before running any of them."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as err:
        raise QueryError(str(err).splitlines()[0]) from err
    for statement in statements:
        kind = statement.type.name
        if kind not in READ_ONLY:
            raise QueryError(
                f"refused: {kind} statements are not allowed; `clickstream sql` only reads the "
                "lake (write results with --format csv/json and a shell redirect)"
            )


def run_query(
    con: duckdb.DuckDBPyConnection, sql: str
) -> tuple[list[str], list[tuple[object, ...]]]:
    """Run one or more read statements; return the last one's columns and rows."""
    check_read_only(con, sql)
    try:
        result = con.execute(sql)
        columns = [d[0] for d in result.description] if result.description else []
        return columns, result.fetchall()
    except duckdb.Error as err:
        message = str(err).strip()
        if "Permission Error" in message or "external access" in message.lower():
            message += " (reading outside the lake needs --allow-path)"
        raise QueryError(message) from err
