"""The statement fence: which SQL `clickstream sql` runs, decided on DuckDB's own parse.

Positive, not a blacklist of statement kinds: a statement runs only if DuckDB parses it as a
SELECT (which covers WITH, VALUES, FROM-first, SHOW, DESCRIBE, SUMMARIZE), or as ``EXPLAIN``
followed by exactly one such SELECT (never ``EXPLAIN ANALYZE`` or other options: ANALYZE runs
what it wraps). Everything else (PRAGMA, SET, ATTACH, COPY, EXPORT, INSTALL, LOAD, CALL, CREATE,
...) is refused in one line before anything runs.

A SELECT can still call table functions that run SQL text (``query()``, ``query_table()``,
``json_execute_serialized_sql()``) or change the session (``enable_logging()``,
``checkpoint()``): every function call in the text is found with DuckDB's tokenizer and a table
function runs only if it is on the allow-list below. Names that only exist in extensions
(``tpch_queries()``) fail anyway: no extension loads on its own in a query session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from clickstream.errors import QueryError

#: Table functions a query may call: readers (fenced by the session's file access) and
#: introspection. Every other table function DuckDB has is refused.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "read_parquet", "parquet_scan", "read_csv", "read_csv_auto", "read_json",
        "read_json_auto", "read_json_objects", "read_json_objects_auto", "read_ndjson",
        "read_ndjson_auto", "read_ndjson_objects", "read_text", "read_blob", "glob",
        "parquet_metadata", "parquet_schema", "parquet_file_metadata", "parquet_kv_metadata",
        "parquet_full_metadata", "parquet_bloom_probe", "sniff_csv", "range",
        "generate_series", "unnest", "repeat", "repeat_row", "json_each", "json_tree",
        "summary", "histogram", "histogram_values", "duckdb_columns", "duckdb_constraints",
        "duckdb_databases", "duckdb_dependencies", "duckdb_extensions", "duckdb_functions",
        "duckdb_indexes", "duckdb_keywords", "duckdb_schemas", "duckdb_sequences",
        "duckdb_settings", "duckdb_tables", "duckdb_types", "duckdb_views", "duckdb_secrets",
        "duckdb_memory", "duckdb_temporary_files", "pragma_table_info", "pragma_show",
        "pragma_version", "pragma_platform", "pragma_collations", "pragma_database_size",
        "pg_timezone_names", "icu_calendar_names", "test_all_types", "which_secret",
    }
)  # fmt: skip
#: Scalar functions with side effects outside the query.
REFUSED_SCALAR_FUNCTIONS = frozenset({"write_log", "getenv", "setseed"})

_HINT = "`clickstream sql` only reads the lake (write results with --format csv/json)"
#: The name a token starts with: a quoted identifier, or a bare word.
_NAME = re.compile(r'"(?:[^"]|"")*"|[^\s"(),;/*+\-<>=!|&%^~\[\]{}:.\']+')
#: First words of the statements the fence can let through.
_READ_WORDS = {"SELECT", "WITH", "FROM", "VALUES", "EXPLAIN", "SHOW", "DESCRIBE", "SUMMARIZE",
               "TABLE", "(", "PIVOT", "UNPIVOT"}  # fmt: skip


@dataclass(frozen=True)
class Statement:
    """A statement that passed the fence, as the text the session will run."""

    sql: str
    kind: str


def _spans(duckdb: Any, sql: str) -> list[tuple[int, int, Any]]:
    """(start, end, kind) of every token, in characters of ``sql``.

    DuckDB reports token positions in UTF-8 bytes; slicing the str with them would shift every
    token after a non-ASCII character (and hide a call from the fence).
    """
    data = sql.encode("utf-8")
    raw = duckdb.tokenize(sql)
    spans = []
    char = 0
    previous = 0
    for i, (start, kind) in enumerate(raw):
        char += len(data[previous:start].decode("utf-8"))
        previous = start
        end_byte = raw[i + 1][0] if i + 1 < len(raw) else len(data)
        end = char + len(data[start:end_byte].decode("utf-8"))
        spans.append((char, end, kind))
    return spans


def _tokens(duckdb: Any, sql: str) -> list[tuple[str, str]]:
    """(text, kind) of every token; comments are skipped by DuckDB's tokenizer."""
    out = []
    for start, end, kind in _spans(duckdb, sql):
        text = sql[start:end].strip()
        if kind.name in ("identifier", "keyword"):
            # The slice runs to the next token, so it may end in a comment: keep the name only.
            match = _NAME.match(text)
            text = match.group(0) if match else text
        out.append((text, kind.name))
    return out


def _called(tokens: list[tuple[str, str]]) -> list[str]:
    """Names written as function calls: ``name (`` (quoted names unquoted, lower case)."""
    names = []
    for (text, kind), (nxt, _) in zip(tokens, tokens[1:], strict=False):
        if nxt.startswith("(") and kind in ("identifier", "keyword"):
            name = text.strip()
            if len(name) >= 2 and name[0] == name[-1] == '"':
                name = name[1:-1].replace('""', '"')
            names.append(name.lower())
    return names


def _check_calls(duckdb: Any, sql: str, table_functions: frozenset[str]) -> None:
    for name in _called(_tokens(duckdb, sql)):
        if name in REFUSED_SCALAR_FUNCTIONS or (
            name in table_functions and name not in ALLOWED_TABLE_FUNCTIONS
        ):
            raise QueryError(f"refused: {name}() is not allowed; {_HINT}")
        if name.startswith(("tpch", "tpcds")):
            raise QueryError(f"refused: {name}() needs an extension; {_HINT}")


def _explain_body(duckdb: Any, con: Any, sql: str) -> str:
    tokens = _tokens(duckdb, sql)
    if len(tokens) < 2 or tokens[0][0].upper() != "EXPLAIN":
        raise QueryError("refused: could not read this EXPLAIN statement; write EXPLAIN SELECT ...")
    if tokens[1][0].upper() in ("ANALYZE", "ANALYSE") or tokens[1][0].startswith("("):
        if tokens[1][0].startswith("(") and _only_select(duckdb, con, sql, tokens):
            return _body(duckdb, sql)
        raise QueryError(
            "refused: EXPLAIN ANALYZE and EXPLAIN options run or reach beyond the plan; "
            "write EXPLAIN SELECT ..."
        )
    return _body(duckdb, sql)


def _body(duckdb: Any, sql: str) -> str:
    second = _spans(duckdb, sql)[1][0]
    return sql[second:]


def _only_select(duckdb: Any, con: Any, sql: str, tokens: list[tuple[str, str]]) -> bool:
    """``EXPLAIN (SELECT ...)``: a parenthesised query, not an option list."""
    try:
        parsed = con.extract_statements(_body(duckdb, sql))
    except duckdb.Error:
        return False
    return len(parsed) == 1 and parsed[0].type.name == "SELECT"


def _check_first_words(duckdb: Any, sql: str) -> None:
    """The first word of every statement, read before DuckDB parses (and rewrites) it.

    DuckDB's parser turns some statements into SELECTs (``PRAGMA version`` becomes ``SELECT *
    FROM pragma_version()``), so the statement type alone cannot tell what the user wrote.
    """
    tokens = _tokens(duckdb, sql)
    starts = [0] + [i + 1 for i, (text, _) in enumerate(tokens) if text.startswith(";")]
    for i in starts:
        if i < len(tokens) and tokens[i][1] == "keyword":
            word = tokens[i][0].upper()
            if word not in _READ_WORDS:
                raise QueryError(f"refused: {word} statements are not allowed; {_HINT}")


def table_function_names(con: Any) -> frozenset[str]:
    rows = con.execute(
        "SELECT DISTINCT lower(function_name) FROM duckdb_functions() "
        "WHERE function_type IN ('table', 'table_macro')"
    ).fetchall()
    return frozenset(r[0] for r in rows)


def check(con: Any, sql: str, table_functions: frozenset[str]) -> list[Statement]:
    """The statements of ``sql`` if every one may run; else QueryError (nothing has run)."""
    import duckdb

    if not sql.strip():
        raise QueryError("empty query: give a SELECT statement")
    if "\x00" in sql:
        raise QueryError("refused: the query holds a NUL character")
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError:
        raise QueryError("the query is not valid UTF-8") from None
    _check_first_words(duckdb, sql)
    try:
        parsed = con.extract_statements(sql)
    except duckdb.Error as err:
        first = _tokens(duckdb, sql)[:1]
        word = first[0][0].upper() if first and first[0][1] == "keyword" else ""
        if word and word not in _READ_WORDS:
            raise QueryError(f"refused: {word} statements are not allowed; {_HINT}") from None
        raise QueryError(_first_line(str(err))) from None
    if not parsed:
        raise QueryError("empty query: give a SELECT statement (found only ';' or comments)")
    out = []
    for statement in parsed:
        kind = statement.type.name
        text = statement.query
        if kind == "EXPLAIN":
            body = _explain_body(duckdb, con, text)
            inner = con.extract_statements(body)
            if len(inner) != 1 or inner[0].type.name != "SELECT":
                raise QueryError(f"refused: EXPLAIN of a non-SELECT statement; {_HINT}")
            _check_calls(duckdb, body, table_functions)
            out.append(Statement("EXPLAIN " + body, kind))
        elif kind == "SELECT" and text.strip():
            # DuckDB turns some PRAGMAs into SELECTs at parse time: the first word decides.
            word = _tokens(duckdb, text)[0][0].upper()
            if word not in _READ_WORDS:
                raise QueryError(f"refused: {word} statements are not allowed; {_HINT}")
            _check_calls(duckdb, text, table_functions)
            out.append(Statement(text, kind))
        else:
            shown = kind if text.strip() else f"{kind} (from a PIVOT without IN list)"
            raise QueryError(f"refused: {shown} statements are not allowed; {_HINT}")
    return out


def _first_line(message: str) -> str:
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    return lines[0] if lines else "query failed"
