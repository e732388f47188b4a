"""A DuckDB database file with the lake's tables and views, for any DuckDB client."""

from __future__ import annotations

from pathlib import Path

import duckdb

from clickstream.errors import LakeError
from clickstream.lake.layout import LakeLayout
from clickstream.query.session import define_views


def write_catalog(out: Path, lake: Path) -> list[str]:
    """Write ``out`` (replacing it) with views over ``lake`` by absolute path; return the names."""
    layout = LakeLayout(lake.absolute())
    if not layout.table.exists():
        raise LakeError(f"no lake at {lake} (run `clickstream etl` or `clickstream demo` first)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        define_views(con, layout)
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
