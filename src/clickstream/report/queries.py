"""The dashboard's numbers, as SQL over the same view definitions as ``clickstream sql``.

A period (and host) is applied by shadowing: a WITH list redefines ``clickstream`` as the page
views in scope and re-declares every view from its one SQL file on top of it, so a query written
against ``sessions`` or ``top_pages`` reads exactly what `clickstream sql` would on a lake that held
only those page views. Metrics are aggregated by DuckDB; Python only formats them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clickstream.errors import QueryError
from clickstream.query.views import VIEW_NAMES, view_sql
from clickstream.report.period import Period
from clickstream.sqltext import sql_literal

if TYPE_CHECKING:
    import duckdb

    from clickstream.query.session import LakeSession

Rows = list[dict[str, Any]]
#: How many rows each "top" table shows.
TOP = 10


def host_condition(host: str) -> str:
    """Page views of ``host``, written with or without the root's trailing dot (one DNS name)."""
    return f"url_host IN ({sql_literal(host)}, {sql_literal(host + '.')})"


def _day(value: object) -> str:
    return f"DATE '{value}'"


@dataclass(frozen=True)
class Scope:
    """The page views a query sees: a span of UTC days and optionally one host."""

    period: Period
    host: str | None

    def where(self) -> str:
        start, end = self.period.start, self.period.end
        conditions = [
            f"event_date BETWEEN {_day(start)} AND {_day(end)}",
            # On the hive partition columns, so DuckDB skips other months' files unread.
            f"year BETWEEN {start.year} AND {end.year}",
            f"make_date(year, month, 1) BETWEEN {_day(start.replace(day=1))} AND {_day(end)}",
        ]
        if self.host is not None:
            conditions.append(host_condition(self.host))
        return " AND ".join(conditions)

    def with_clause(self) -> str:
        """``WITH clickstream AS (...), <each view> AS (...)``: the views over the scope only."""
        # NOT MATERIALIZED: each use reads only the columns it needs (a materialized copy would
        # hold every column of every page view in scope).
        parts = [
            f"clickstream AS NOT MATERIALIZED (SELECT * FROM main.clickstream WHERE {self.where()})"
        ]
        parts += [f"{name} AS ({view_sql(name)})" for name in VIEW_NAMES]
        return "WITH " + ",\n".join(parts)


def _ranked(select: str, order: str) -> str:
    """Top rows of a grouped query, with each row's share of the whole (before the limit)."""
    return (
        f"SELECT *, CAST({order} AS DOUBLE) / nullif(sum({order}) OVER (), 0) AS share "
        f"FROM ({select}) ORDER BY {order} DESC, 1 LIMIT {TOP}"
    )


#: The period's visits broken down by a column of the sessions view: name -> column.
VISIT_BREAKDOWNS: dict[str, str] = {
    "entry_pages": "landing_path",
    "exit_pages": "exit_path",
    "sources": "utm_source",
    "mediums": "utm_medium",
    "campaigns": "utm_campaign",
}


def visits_sql(period: Period, host: str | None) -> str:
    """Every number built from visits, from ONE evaluation of the sessions view.

    Rows of two shapes (``part``): one ``kpis`` row with each KPI for the period, for the period
    before, and its change; and ``breakdown`` rows, the top visits per VISIT_BREAKDOWNS column in
    the period (``key``, visits, visitors, bounce_rate, share, rank). Visits are built from the
    page views of both periods together and belong to the period in which they start. Relative
    change is current / previous - 1; bounce rate change is in points. Without a previous period
    (it would start before year 1) its columns are NULL.
    """
    previous = period.previous
    both = Scope(Period(previous.start if previous else period.start, period.end), host)
    cur = _day(period.start)
    labelled = f"CASE WHEN {{}} >= {cur} THEN 'current' ELSE 'previous' END"
    metrics = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "avg_duration")
    columns = []
    for m in metrics:
        columns.append(f"max({m}) FILTER (WHERE period = 'current') AS {m}")
        columns.append(f"max({m}) FILTER (WHERE period = 'previous') AS {m}_previous")
    changes = [
        f"{m} / nullif({m}_previous, 0) - 1 AS {m}_change" for m in metrics if m != "bounce_rate"
    ]
    changes.append("bounce_rate - bounce_rate_previous AS bounce_rate_change")
    grouped = "\n  UNION ALL\n  ".join(
        f"SELECT '{name}' AS breakdown, {column} AS key, count(*) AS visits, "
        "count(DISTINCT anonymous_user_id) AS visitors, avg(bounce) AS bounce_rate "
        f"FROM s WHERE period = 'current' GROUP BY {column}"
        for name, column in VISIT_BREAKDOWNS.items()
    )
    return f"""{both.with_clause()},
s AS MATERIALIZED (
  SELECT anonymous_user_id, session_start, duration_seconds, pageviews, landing_path, exit_path,
         utm_source, utm_medium, utm_campaign,
         {labelled.format("CAST(session_start AS DATE)")} AS period,
         CASE WHEN is_bounce THEN 1.0 ELSE 0.0 END AS bounce
  FROM sessions
), events AS (
  SELECT {labelled.format("event_date")} AS period,
         count(*) AS pageviews, count(DISTINCT anonymous_user_id) AS visitors
  FROM clickstream GROUP BY 1
), visits AS (
  SELECT period, count(*) AS visits, avg(pageviews) AS views_per_visit,
         avg(bounce) AS bounce_rate, avg(duration_seconds) AS avg_duration
  FROM s GROUP BY 1
), both_periods AS (
  -- Page views but no visit starting in the period: 0 visits (the ratios stay NULL).
  SELECT period, e.visitors, CASE WHEN e.pageviews > 0 THEN coalesce(v.visits, 0) END AS visits,
         e.pageviews, v.views_per_visit, v.bounce_rate, v.avg_duration
  FROM (VALUES ('current'), ('previous')) p(period)
  LEFT JOIN events e USING (period) LEFT JOIN visits v USING (period)
), pivoted AS (SELECT {", ".join(columns)} FROM both_periods
), kpis AS (SELECT *, {", ".join(changes)} FROM pivoted
), grouped AS (
  {grouped}
), ranked AS (
  SELECT *,
         CAST(visits AS DOUBLE) / nullif(sum(visits) OVER (PARTITION BY breakdown), 0) AS share,
         row_number() OVER (PARTITION BY breakdown ORDER BY visits DESC, key NULLS FIRST) AS rank
  FROM grouped
)
SELECT * FROM (
  SELECT 'kpis' AS part, * FROM kpis
  UNION ALL BY NAME
  SELECT 'breakdown' AS part, * FROM ranked WHERE rank <= {TOP}
) ORDER BY part DESC, breakdown, rank"""


def split_visits(rows: Rows) -> tuple[dict[str, Any], dict[str, Rows]]:
    """The visits query's rows as (the KPI row, {breakdown: its top rows})."""
    kpis = next(r for r in rows if r["part"] == "kpis")
    breakdowns: dict[str, Rows] = {name: [] for name in VISIT_BREAKDOWNS}
    for row in rows:
        if row["part"] == "breakdown":
            breakdowns[row["breakdown"]].append(row)
    return kpis, breakdowns


def timeseries_sql(period: Period, host: str | None, days: Period | None = None) -> str:
    """Visitors and page views per day (per hour for short periods), empty buckets as zero.

    ``days`` limits the daily buckets (the days from the first to the last day with data in the
    period), so a period of centuries does not chart millions of empty days.
    """
    scope = Scope(period, host).with_clause()
    # Date arithmetic in SQL: DuckDB dates reach far past 9999-12-31, Python's stop there.
    after = f"CAST({_day(period.end)} AS TIMESTAMP) + INTERVAL 1 DAY"
    if period.hourly:
        return f"""{scope},
buckets AS (
  SELECT date_trunc('hour', event_time) AS bucket, count(*) AS pageviews,
         count(DISTINCT anonymous_user_id) AS visitors
  FROM clickstream GROUP BY 1
)
SELECT r.range AS bucket, coalesce(b.pageviews, 0) AS pageviews,
       coalesce(b.visitors, 0) AS visitors
FROM range(CAST({_day(period.start)} AS TIMESTAMP), {after}, INTERVAL 1 HOUR) r
LEFT JOIN buckets b ON b.bucket = r.range ORDER BY 1"""
    span = period if days is None else days
    last = f"CAST({_day(span.end)} AS TIMESTAMP) + INTERVAL 1 DAY"
    return f"""{scope}
SELECT CAST(r.range AS DATE) AS bucket, coalesce(d.pageviews, 0) AS pageviews,
       coalesce(d.unique_users, 0) AS visitors
FROM range(CAST({_day(span.start)} AS TIMESTAMP), {last}, INTERVAL 1 DAY) r
LEFT JOIN pageviews_daily d ON d.event_date = CAST(r.range AS DATE) ORDER BY 1"""


#: The period's page-view breakdowns: name -> (SELECT over the scoped views, ranking column).
BREAKDOWNS: dict[str, tuple[str, str]] = {
    "top_pages": (
        "SELECT url_host AS host, url_path AS path, unique_users AS visitors, pageviews "
        "FROM top_pages",
        "pageviews",
    ),
    "browsers": (
        "SELECT browser, sum(pageviews) AS pageviews FROM devices GROUP BY 1",
        "pageviews",
    ),
    "systems": ("SELECT os, sum(pageviews) AS pageviews FROM devices GROUP BY 1", "pageviews"),
    "screens": (
        "SELECT CASE WHEN screen_width IS NOT NULL "
        "THEN screen_width || '×' || screen_height END AS screen, "
        "sum(pageviews) AS pageviews FROM devices GROUP BY 1",
        "pageviews",
    ),
    "hosts": (
        "SELECT url_host AS host, sum(pageviews) AS pageviews FROM top_pages GROUP BY 1",
        "pageviews",
    ),
}


def bounds_sql(host: str | None) -> str:
    """The lake's first and last day with page views, its newest event and its size."""
    where = f" WHERE {host_condition(host)}" if host is not None else ""
    return (
        "SELECT min(event_date) AS first_day, max(event_date) AS last_day, "
        f"max(event_time) AS newest_event, count(*) AS pageviews FROM clickstream{where}"
    )


#: How many hosts an unknown --host lists.
KNOWN_HOSTS = 10
#: The lake's hosts, most page views first (one more than listed: says whether there are more).
HOSTS_SQL = (
    "SELECT url_host AS host, count(*) OVER () AS hosts FROM clickstream "
    f"GROUP BY url_host ORDER BY count(*) DESC, url_host NULLS LAST LIMIT {KNOWN_HOSTS}"
)

LAKE_QUERIES: dict[str, str] = {
    "rejected": (
        "SELECT reject_reason AS reason, count(*) AS rows FROM clickstream_rejected "
        "GROUP BY 1 ORDER BY 2 DESC, 1"
    ),
    "lake": (
        "SELECT rows, rejected, CAST(rejected AS DOUBLE) / nullif(rows + rejected, 0) "
        "AS rejected_share FROM (SELECT (SELECT count(*) FROM clickstream) AS rows, "
        "(SELECT count(*) FROM clickstream_rejected) AS rejected)"
    ),
}

STREAM_WINDOWS = "stream_windows"
#: The latest stream windows (the view exists when the lake holds stream statistics).
STREAM_SQL = f"SELECT * FROM {STREAM_WINDOWS} ORDER BY window_start DESC LIMIT 12"


def period_queries(period: Period, host: str | None, days: Period | None = None) -> dict[str, str]:
    """Every query of a report, by name (independent of each other, so they may run at once).

    ``days``: the span of the daily series (see :func:`timeseries_sql`).
    """
    scope = Scope(period, host).with_clause()
    queries = {
        "visits": visits_sql(period, host),
        "timeseries": timeseries_sql(period, host, days),
    }
    for name, (select, order) in BREAKDOWNS.items():
        queries[name] = f"{scope}\n{_ranked(select, order)}"
    queries.update(LAKE_QUERIES)
    return queries


def _rows(result: Any) -> Rows:
    columns = [d[0] for d in result.description or []]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def _failed(name: str, err: Exception) -> QueryError:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return QueryError(f"report query '{name}' failed: {lines[0] if lines else type(err).__name__}")


def fetch(session: LakeSession, name: str, sql: str) -> Rows:
    """Run one query through the session's fence."""
    try:
        return _rows(session.execute(sql))
    except QueryError as err:
        raise _failed(name, err) from None


def has_table(session: LakeSession, name: str) -> bool:
    query = "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = "
    rows = fetch(session, "catalog", query + sql_literal(name))
    return bool(rows[0]["n"])


def _fetch_on(cursor: duckdb.DuckDBPyConnection, name: str, sql: str) -> Rows:
    import duckdb

    try:
        return _rows(cursor.execute(sql))
    except duckdb.Error as err:
        raise _failed(name, err) from None


def run_all(
    session: LakeSession,
    queries: Mapping[str, str],
    done: Callable[[str, int], None] | None = None,
    workers: int = 4,
) -> dict[str, Rows]:
    """Run the queries several at once, on cursors of the session's one DuckDB database.

    Each query passes the session's statement fence first; the cursors share the database and
    so its locked configuration (file access limited to the lake, no extensions, no network).
    """
    checked = {}
    for name, sql in queries.items():
        try:
            statements = session.statements(sql)
        except QueryError as err:
            raise _failed(name, err) from None
        if len(statements) != 1:
            raise QueryError(f"report query '{name}' is not one statement")
        checked[name] = statements[0].sql
    cursors = {name: session.con.cursor() for name in checked}
    results: dict[str, Rows] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(checked)))) as pool:
            futures = {
                pool.submit(_fetch_on, cursors[name], name, sql): name
                for name, sql in checked.items()
            }
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if done is not None:
                    done(futures[future], len(results))
    finally:
        for cursor in cursors.values():
            cursor.close()
    return results
