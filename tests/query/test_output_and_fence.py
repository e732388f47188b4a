"""Unit tests of the output writers and the statement fence (no CLI, no lake)."""

from __future__ import annotations

import io
import json

import duckdb
import pytest
from rich.console import Console

from clickstream.errors import QueryError
from clickstream.query import fence, output
from clickstream.query.session import CONNECT_CONFIG


def _batches(sql: str, rows: int = 2):
    con = duckdb.connect(config=dict(CONNECT_CONFIG))
    con.execute("SET TimeZone = 'UTC'")
    reader = con.execute(sql).to_arrow_reader(rows)
    return list(reader.schema.names), reader


def test_printable_escapes_controls_and_bidi() -> None:
    assert output.printable("a\x1b[31mb\x07\r\u202e\x9b") == "a\\x1b[31mb\\x07\\x0d\\u202e\\x9b"
    assert output.printable("line\nnext é 日本") == "line\nnext é 日本"


def test_distinct_names() -> None:
    assert output.distinct_names(["a", "a", "a"]) == ["a", "a_2", "a_3"]
    assert output.distinct_names(["a", "a", "a_2"]) == ["a", "a_3", "a_2"]


def test_json_streams_every_batch_as_valid_json() -> None:
    cols, batches = _batches(
        "SELECT i, CASE WHEN i % 3 = 0 THEN 'nan'::DOUBLE ELSE i / 2 END AS x, "
        "i::VARCHAR::BLOB AS b FROM range(7) t(i)"
    )
    buf = io.StringIO()
    assert output.write_json(cols, batches, buf) == 7
    rows = json.loads(buf.getvalue(), parse_constant=lambda c: pytest.fail(c))
    assert [r["i"] for r in rows] == list(range(7))
    assert rows[3]["x"] is None and rows[1]["x"] == 0.5 and rows[2]["b"] == "Mg=="


def test_json_of_no_rows_is_an_empty_array() -> None:
    buf = io.StringIO()
    output.write_json(*_batches("SELECT 1 AS a WHERE false"), buf)
    assert json.loads(buf.getvalue()) == []


def test_table_is_plain_text_and_cut_at_the_limit(monkeypatch) -> None:
    monkeypatch.setattr(output, "TABLE_MAX_ROWS", 3)
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    cols, batches = _batches("SELECT '[bold]x[/]' || i AS s FROM range(5) t(i)")
    shown, cut = output.write_table(cols, batches, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert (shown, cut) == (3, True) and "[bold]x[/]2" in text and "[bold]x[/]3" not in text


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect(config=dict(CONNECT_CONFIG))
    return c, fence.table_function_names(c)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select 1;",
        "WITH a AS (SELECT 1) SELECT * FROM a",
        "FROM range(3)",
        "VALUES (1)",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "EXPLAIN SELECT 1",
        "EXPLAIN (SELECT 1)",
        "DESCRIBE SELECT 1",
        "SHOW TABLES",
        "SUMMARIZE SELECT 1 AS a",
        "SELECT * FROM read_parquet('x.parquet')",
        "SELECT query FROM (SELECT 1 AS query)",
        "SELECT 'query(' AS s",
    ],
)
def test_fence_lets_reads_through(con, sql: str) -> None:
    c, functions = con
    statements = fence.check(c, sql, functions)
    assert statements and all(s.kind in ("SELECT", "EXPLAIN") for s in statements)


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN ANALYZE SELECT 1",
        "explain analyze select 1",
        "EXPLAIN /* c */ ANALYZE SELECT 1",
        "EXPLAIN (ANALYZE, FORMAT json) SELECT 1",
        "EXPLAIN COPY (SELECT 1) TO 'x.csv'",
        "PRAGMA version",
        "pragma show_tables",
        "SELECT 1; PRAGMA version",
        "SELECT * FROM query('SELECT 1')",
        "SELECT * FROM main.query('SELECT 1')",
        "SELECT * FROM \"Query\"('SELECT 1')",
        "SELECT * FROM query\n--\n('SELECT 1')",
        "SELECT (SELECT count(*) FROM query_table('t'))",
        "SELECT * FROM checkpoint()",
        "SELECT write_log('x')",
        "CALL pragma_version()",
        "SET x = 1",
    ],
)
def test_fence_refuses(con, sql: str) -> None:
    c, functions = con
    with pytest.raises(QueryError, match="refused"):
        fence.check(c, sql, functions)


def test_explain_runs_our_text_not_the_users(con) -> None:
    c, functions = con
    (statement,) = fence.check(c, "EXPLAIN SELECT 42", functions)
    assert statement.sql == "EXPLAIN SELECT 42"


# DuckDB's tokenizer reports byte positions: text before a call that is wider in UTF-8 than in
# characters (accents, emoji, U+2028) once shifted every slice and hid the call from the fence.
_WIDE = [
    "'é' AS x, ",
    "'😀😀😀' AS x, ",
    "'\u2028' AS x, ",
    "/* ééé */ ",
    "'" + "ß" * 300 + "' x, ",
]
_HIDDEN = [
    "* FROM query('SELECT 42')",
    "* FROM duckdb_logs()",
    "* FROM enable_logging(level:='debug', storage:='file', storage_path:='x')",
    "write_log('x')",
    "* FROM query_table('t')",
]


@pytest.mark.parametrize("prefix", _WIDE)
@pytest.mark.parametrize("call", _HIDDEN)
def test_fence_is_not_fooled_by_multibyte_text(con, prefix: str, call: str) -> None:
    c, functions = con
    for sql in (f"SELECT {prefix}{call}", f"EXPLAIN SELECT {prefix}{call}"):
        with pytest.raises(QueryError, match="refused"):
            fence.check(c, sql, functions)


def test_fence_keeps_multibyte_reads_intact(con) -> None:
    c, functions = con
    (statement,) = fence.check(c, "EXPLAIN SELECT 'é😀' AS x", functions)
    assert statement.sql == "EXPLAIN SELECT 'é😀' AS x"


@pytest.mark.parametrize("sql", ["SELECT '\udcff'", "SELECT 1 -- \x00"])
def test_fence_refuses_undecodable_or_nul_text(con, sql: str) -> None:
    c, functions = con
    with pytest.raises(QueryError):
        fence.check(c, sql, functions)
