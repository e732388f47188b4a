"""Open a lake for querying in DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb

from clickstream.errors import LakeError
from clickstream.lake.layout import LakeLayout


def open_lake(lake: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the lake's tables as views."""
    layout = LakeLayout(lake)
    if not layout.table.exists():
        raise LakeError(f"no lake at {lake} (run `clickstream etl` or `clickstream demo` first)")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table_glob = str(layout.table / "**" / "*.parquet").replace("'", "''")
    con.execute(
        "CREATE VIEW clickstream AS SELECT * FROM read_parquet("
        f"'{table_glob}', hive_partitioning = true, union_by_name = true)"
    )
    rejected_glob = str(layout.rejected / "*.parquet").replace("'", "''")
    if any(layout.rejected.glob("*.parquet")):
        con.execute(f"CREATE VIEW clickstream_rejected AS SELECT * FROM read_parquet('{rejected_glob}')")
    else:
        con.execute(
            "CREATE VIEW clickstream_rejected AS SELECT NULL::VARCHAR AS source_file, "
            "NULL::BIGINT AS line_number, NULL::VARCHAR AS raw_line, NULL::VARCHAR AS reject_reason, "
            "NULL::VARCHAR AS run_id WHERE FALSE"
        )
    return con
