"""No query installs, downloads or loads an extension (HOME is a fresh folder in the sandbox)."""

from __future__ import annotations

import pytest

from tests.attack.conftest import Sandbox, one_line_error

ROUTES = [
    "PRAGMA tpch(1)",
    "PRAGMA tpcds(1)",
    "SELECT * FROM tpch_queries()",
    "SELECT * FROM tpcds_queries()",
    "INSTALL httpfs",
    "FORCE INSTALL tpch",
    "LOAD tpch",
    "LOAD '/nonexistent/evil.duckdb_extension'",
    "SELECT * FROM 's3://bucket/x.parquet'",
    "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
    "SELECT * FROM read_csv('hf://datasets/x/y.csv')",
    "SELECT * FROM read_csv('https://example.invalid/x.csv')",
    "SELECT * FROM 'x.xlsx'",
    "SELECT * FROM read_xlsx('x.xlsx')",
    "SELECT * FROM sqlite_scan('x.db', 't')",
    "SELECT * FROM postgres_scan('host=127.0.0.1', 'public', 't')",
    "SELECT * FROM iceberg_scan('x')",
    "SELECT * FROM delta_scan('x')",
    "SELECT * FROM st_read('x.shp')",
    "SELECT ST_Point(1, 2)",
    "SELECT * FROM fts_main_clickstream.match_bm25('x', 'y')",
    "SELECT '127.0.0.1'::INET",
]


@pytest.mark.parametrize("sql", ROUTES)
def test_no_extension_is_installed_or_loaded(sandbox: Sandbox, sql: str) -> None:
    proc = sandbox.sql(sql)
    one_line_error(proc)
    assert proc.stdout == ""
    loaded = sandbox.sql(
        "SELECT count(*) AS n FROM duckdb_functions() WHERE function_name IN ('st_point', "
        "'st_read', 'tpch_queries', 'tpcds_queries', 'sqlite_scan', 'postgres_scan', "
        "'iceberg_scan', 'delta_scan', 'read_xlsx', 'match_bm25')",
        "-f",
        "csv",
    )
    assert loaded.stdout == "n\n0\n", loaded.stderr
    # The sandbox fixture then asserts $HOME/.duckdb was never created.
