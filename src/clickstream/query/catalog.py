"""A DuckDB database file with the lake's tables and views, for any DuckDB client."""

from __future__ import annotations

from pathlib import Path

import duckdb

from clickstream import s3
from clickstream.errors import LakeError
from clickstream.lake.store import LocalLake, open_store
from clickstream.query.session import define_views


def write_catalog(out: Path, lake: str | Path) -> list[str]:
    """Write ``out`` (replacing it) with views over ``lake`` by absolute path; return the names.

    For an s3:// lake the views hold the URIs; the client brings its own S3 credentials.
    """
    store = open_store(lake)
    if isinstance(store, LocalLake) and not store.layout.table.exists():
        raise LakeError(f"no lake at {lake} (run `clickstream etl` or `clickstream demo` first)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        if s3.is_s3(store.root):
            s3.configure_duckdb(con)  # to bind the views; the secret is temporary, not saved
        define_views(con, store)
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables ORDER BY table_name"
            ).fetchall()
        ]
    finally:
        con.close()
    tmp.replace(out)
    return names
