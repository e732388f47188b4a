"""Statements that would write, reach out or change the session are refused before running."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.attack.conftest import Sandbox, one_line_error


def _cases(lake: str, outside: str) -> dict[str, str]:
    table = f"{lake}/clickstream"
    part = f"{table}/year=2024/month=1"
    # An existing data file of the lake: the one write DuckDB's allow-list would permit (it is a
    # file the session reads), so only the fence stands between it and an overwrite.
    existing = next(iter(sorted(Path(part).glob("*.parquet"))), f"{part}/none.parquet")
    copy_all = (
        f"COPY (SELECT * FROM clickstream WHERE false) TO '{table}' "
        "(FORMAT parquet, PARTITION_BY (year, month), OVERWRITE)"
    )
    return {
        "explain-analyze-copy-wipes-lake": f"EXPLAIN ANALYZE {copy_all}",
        "explain-analyse-spelling": f"EXPLAIN ANALYSE {copy_all}",
        "explain-option-analyze": f"EXPLAIN (ANALYZE) {copy_all}",
        "explain-option-analyze-true": f"EXPLAIN (ANALYZE true, FORMAT json) {copy_all}",
        "explain-analyze-overwrite-file": (
            f"EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{part}/x.parquet' (USE_TMP_FILE false)"
        ),
        "explain-analyze-dup-rows": (
            f"EXPLAIN ANALYZE COPY (SELECT * FROM clickstream) TO '{part}/dup.parquet'"
        ),
        "explain-analyze-commit-log": (
            f"EXPLAIN ANALYZE COPY (SELECT '../../victim' AS run_id) TO "
            f"'{lake}/_runs/20240101T000000Z-abcdef.commit.json' (FORMAT json)"
        ),
        "explain-analyze-view": "EXPLAIN ANALYZE CREATE OR REPLACE VIEW sessions AS SELECT 1",
        "explain-copy": f"EXPLAIN {copy_all}",
        "explain-allow-path-write": f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{outside}/w.csv'",
        "copy": f"COPY (SELECT 1 AS x) TO '{part}/evil.parquet' (FORMAT parquet)",
        "copy-over-existing-file": (
            f"COPY (SELECT 1 AS x) TO '{existing}' (FORMAT parquet, USE_TMP_FILE false)"
        ),
        "explain-analyze-over-existing-file": (
            f"EXPLAIN ANALYZE COPY (SELECT * FROM clickstream LIMIT 1) TO '{existing}' "
            "(FORMAT parquet, USE_TMP_FILE false)"
        ),
        "copy-outside": f"COPY (SELECT 1) TO '{outside}/w.csv'",
        "copy-from": f"COPY clickstream FROM '{outside}/secret.csv'",
        "export": f"EXPORT DATABASE '{outside}/db'",
        "attach": f"ATTACH '{outside}/x.duckdb' AS x",
        "detach": "DETACH memory",
        "install": "INSTALL tpch",
        "load": "LOAD tpch",
        "call": "CALL enable_logging()",
        "checkpoint": "CHECKPOINT",
        "pragma-tpch": "PRAGMA tpch(1)",
        "pragma-version": "PRAGMA version",
        "set": "SET enable_external_access = true",
        "reset": "RESET allowed_paths",
        "use": "USE system",
        "create-table": "CREATE TABLE t AS SELECT 1",
        "create-macro": "CREATE MACRO m() AS 1",
        "create-secret": "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
        "drop": "DROP VIEW clickstream",
        "insert": "INSERT INTO clickstream SELECT * FROM clickstream",
        "vacuum": "VACUUM",
        "second-statement": f"SELECT 1; COPY (SELECT 1) TO '{outside}/w.csv'",
        "cte-then-copy": f"WITH x AS (SELECT 1) SELECT * FROM x; COPY x TO '{outside}/w.csv'",
        "pivot-creates-type": "PIVOT clickstream ON browser",
        "query-fn": f"SELECT * FROM query('COPY (SELECT 1) TO ''{outside}/w.csv''')",
        "query-fn-select": "SELECT * FROM query('SELECT 42')",
        "query-fn-quoted": "SELECT * FROM \"QUERY\" /* c */ ('SELECT 42')",
        "query-fn-in-cte": "WITH q AS (SELECT * FROM query('SELECT 1')) SELECT * FROM q",
        "query-fn-in-explain": "EXPLAIN SELECT * FROM query('SELECT 1')",
        "query-table": "SELECT * FROM query_table('clickstream')",
        "json-execute": (
            "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))"
        ),
        "enable-logging-file": (
            f"SELECT * FROM enable_logging(storage='file', storage_path='{lake}/_runs')"
        ),
        "checkpoint-fn": "SELECT * FROM force_checkpoint()",
        "write-log": "SELECT write_log('x')",
        "tpch-queries": "SELECT * FROM tpch_queries()",
        "tpcds-queries": "SELECT * FROM tpcds_queries()",
        "dbgen": "SELECT * FROM main.tpch_answers()",
    }


CASES = list(_cases("LAKE", "OUT"))


@pytest.mark.parametrize("case", CASES)
def test_refused_before_anything_runs(sandbox: Sandbox, case: str) -> None:
    sql = _cases(str(sandbox.lake), str(sandbox.outside))[case]
    proc = sandbox.sql(sql, "--allow-path", str(sandbox.outside))
    one_line_error(proc, "refused")
    assert proc.stdout == ""


@pytest.mark.parametrize("text", ["", "   ", ";", ";;", "-- only a comment", "/* c */ ;"])
def test_empty_queries_are_one_line(sandbox: Sandbox, text: str) -> None:
    one_line_error(sandbox.run("sql", "-l", str(sandbox.lake), "--", text), "empty query")
    piped = sandbox.run("sql", "-l", str(sandbox.lake), stdin=text)
    one_line_error(piped, "empty query")


def test_reads_still_work(sandbox: Sandbox) -> None:
    for sql in (
        "SELECT count(*) AS n FROM clickstream",
        "WITH x AS (SELECT * FROM clickstream) SELECT count(*) AS n FROM x",
        "FROM clickstream SELECT count(*) AS n",
        "SELECT count(*) AS n FROM (DESCRIBE clickstream) WHERE column_name = 'event_id'",
    ):
        proc = sandbox.sql(sql, "-f", "csv")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[0] == "n"
    plan = sandbox.sql("EXPLAIN SELECT * FROM sessions")
    assert plan.returncode == 0 and "physical_plan" in plan.stdout
    summary = sandbox.sql("SUMMARIZE clickstream", "-f", "csv")
    assert summary.returncode == 0 and "event_id" in summary.stdout
