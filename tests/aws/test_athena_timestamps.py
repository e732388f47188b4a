"""Athena reads ``event_time`` at millisecond precision: its views' SQL tested with that rounding.

Athena (engine v3, Trino's Hive connector, ``timestamp_precision`` MILLISECONDS) reads the
lake's Parquet microseconds rounded to the millisecond. Athena runs no SQL here (moto), so the
views' Athena SQL, exactly as ``deploy`` and ``ddl --dialect athena`` send it, is transpiled back
by sqlglot and run by DuckDB over the lake's rows with ``event_time`` rounded the same way:

- at millisecond-whole times the Athena SQL answers exactly what the DuckDB views answer, every
  view, durations included (no float noise);
- at microsecond times the answers differ only in ``sessions`` and only in the documented ways
  (``docs/athena.md``): durations and start/end by at most 1 ms, ties within one millisecond
  broken by event_id, a gap within half a millisecond of 30 minutes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot

from clickstream.contract.schema import OUTPUT_COLUMNS, PARTITION_COLUMNS
from clickstream.generate import generate
from clickstream.pipeline import EtlOptions, run_etl
from clickstream.query.ddl import athena_views, transpile
from clickstream.query.views import VIEW_NAMES, view_sql

#: What Athena reads: microseconds rounded half up to milliseconds (times here are after 2000).
ROUND_TO_MS = "make_timestamp((epoch_us(event_time) + 500) // 1000 * 1000)"


def athena_sql_on_duckdb(name: str) -> str:
    """The view's SELECT as Athena receives it, read back into DuckDB by sqlglot."""
    [statement] = [s for s in athena_views() if s.startswith(f"CREATE OR REPLACE VIEW {name} AS")]
    select = statement.split(" AS\n", 1)[1]
    return sqlglot.transpile(select, read="athena", write="duckdb")[0]


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return sorted(con.sql(sql).fetchall(), key=repr)


def lake_connection(lake: Path, event_time: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"CREATE TABLE clickstream AS SELECT * REPLACE ({event_time} AS event_time) "
        f"FROM read_parquet('{lake}/clickstream/**/*.parquet', hive_partitioning = true)"
    )
    return con


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("athena")
    src = generate(tmp / "raw.csv", 6_000, seed=21)
    run_etl(EtlOptions(input=str(src), lake=str(tmp / "lake")))
    return tmp / "lake"


def test_the_athena_sql_is_what_deploy_sends() -> None:
    sessions = transpile(view_sql("sessions"), "athena")
    # Integer milliseconds, never to_unixtime's doubles.
    assert "DATE_DIFF('MILLISECOND', MIN(event_time), MAX(event_time)) * 1000" in sessions
    assert "TO_UNIXTIME" not in sessions.upper()
    assert len(athena_views()) == len(VIEW_NAMES)


def test_lake_has_sub_millisecond_times(lake: Path) -> None:
    """The generated lake exercises the rounding at all (else the next tests prove nothing)."""
    con = lake_connection(lake, "event_time")
    [(sub_ms,)] = con.sql(
        "SELECT count(*) FROM clickstream WHERE epoch_us(event_time) % 1000 <> 0"
    ).fetchall()
    assert sub_ms > 100


@pytest.mark.parametrize("name", VIEW_NAMES)
def test_athena_sql_equals_the_duckdb_view_on_millisecond_times(lake: Path, name: str) -> None:
    con = lake_connection(lake, ROUND_TO_MS)
    assert rows(con, athena_sql_on_duckdb(name)) == rows(con, view_sql(name))


@pytest.mark.parametrize("name", [n for n in VIEW_NAMES if n != "sessions"])
def test_views_without_event_time_answer_alike_on_athena(lake: Path, name: str) -> None:
    """Daily views group by the stored event_date (computed from microseconds at ETL time)."""
    exact = lake_connection(lake, "event_time")
    athena = lake_connection(lake, ROUND_TO_MS)
    assert rows(athena, athena_sql_on_duckdb(name)) == rows(exact, view_sql(name))


def test_sessions_on_athena_differ_by_at_most_a_millisecond(lake: Path) -> None:
    exact = lake_connection(lake, "event_time")
    athena = lake_connection(lake, ROUND_TO_MS)
    query = "SELECT session_id, pageviews, duration_seconds FROM ({}) s"
    ours = {r[0]: r[1:] for r in rows(exact, query.format(view_sql("sessions")))}
    theirs = {r[0]: r[1:] for r in rows(athena, query.format(athena_sql_on_duckdb("sessions")))}
    assert ours.keys() == theirs.keys()
    deltas = [abs(ours[k][1] - theirs[k][1]) for k in ours]
    assert max(deltas) <= 0.001 + 1e-9
    assert any(d > 0 for d in deltas)  # the microseconds really are lost on Athena
    assert all(ours[k][0] == theirs[k][0] for k in ours)


def crafted(event_time: str) -> duckdb.DuckDBPyConnection:
    """A few visitors whose page views sit exactly where Athena's rounding shows."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    columns = ", ".join(
        f"CAST(NULL AS {c.type}) AS {c.name}" for c in (*OUTPUT_COLUMNS, *PARTITION_COLUMNS)
    )
    con.execute(f"CREATE TABLE clickstream AS SELECT {columns} WHERE FALSE")
    events = [
        # tie: two views 300 us apart, one millisecond on Athena; the later has the smaller id
        ("tie", "b-first", "2024-03-01 10:00:00.000100", "/a"),
        ("tie", "a-second", "2024-03-01 10:00:00.000400", "/b"),
        # gap: 30 min + 400 us (two visits here) rounds to exactly 30 min (one visit on Athena)
        ("gap", "g1", "2024-03-01 12:00:00", "/x"),
        ("gap", "g2", "2024-03-01 12:30:00.000400", "/y"),
        # duration: 1.234567 s here, 1.235 s on Athena
        ("long", "l1", "2024-03-01 08:00:00", "/p"),
        ("long", "l2", "2024-03-01 08:00:01.234567", "/q"),
        # the last half millisecond of a day reads as the next day's midnight on Athena
        ("late", "z1", "2024-03-01 23:59:59.999600", "/z"),
    ]
    for user, event_id, at, path in events:
        con.execute(
            "INSERT INTO clickstream (anonymous_user_id, event_id, event_time, url_path) "
            "VALUES (?, ?, CAST(? AS TIMESTAMP), ?)",
            [user, event_id, at, path],
        )
    con.execute(f"UPDATE clickstream SET event_time = {event_time}")
    return con


def sessions_by_user(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    query = (
        "SELECT anonymous_user_id, session_id, landing_path, exit_path, pageviews, "
        f"duration_seconds, CAST(session_start AS VARCHAR) FROM ({sql}) s ORDER BY session_start"
    )
    for user, *rest in con.sql(query).fetchall():
        out.setdefault(user, []).append(tuple(rest))
    return out


def test_the_documented_differences_exactly() -> None:
    ours = sessions_by_user(crafted("event_time"), view_sql("sessions"))
    athena = sessions_by_user(crafted(ROUND_TO_MS), athena_sql_on_duckdb("sessions"))
    # Ties within one millisecond: Athena orders by event_id, so landing and exit swap.
    assert [s[:4] for s in ours["tie"]] == [("b-first", "/a", "/b", 2)]
    assert [s[:4] for s in athena["tie"]] == [("a-second", "/b", "/a", 2)]
    # A gap within half a millisecond of 30 minutes: two visits here, one on Athena.
    assert [s[3] for s in ours["gap"]] == [1, 1]
    assert [s[3] for s in athena["gap"]] == [2]
    assert athena["gap"][0][4] == 1800.0
    # Durations: microseconds here, whole milliseconds (rounded) on Athena.
    assert math.isclose(ours["long"][0][4], 1.234567, abs_tol=1e-12)
    assert athena["long"][0][4] == 1.235
    # The day's last half millisecond.
    assert ours["late"][0][5] == "2024-03-01 23:59:59.9996"
    assert athena["late"][0][5] == "2024-03-02 00:00:00"
