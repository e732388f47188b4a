"""The KPIs computed independently: plain DuckDB over the lake's Parquet files, no project code.

Visits follow the documented rule (a new visit after more than 30 minutes without a page view,
ties broken by event_id), built from the page views of the current and previous periods together
and counted in the period in which they start.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb


def lake_days(lake: Path, host: str | None = None) -> tuple[date, date]:
    con = duckdb.connect()
    where = f"WHERE url_host = '{host}'" if host else ""
    first, last = con.execute(
        "SELECT min(event_date), max(event_date) FROM "
        f"read_parquet('{lake}/clickstream/**/*.parquet', hive_partitioning = true) {where}"
    ).fetchone()
    return first, last


def kpis(lake: Path, start: date, end: date, host: str | None = None) -> dict[str, Any]:
    days = (end - start).days + 1
    prev_start = start - timedelta(days=days)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    host_filter = f"AND url_host = '{host}'" if host else ""
    row = con.execute(
        f"""
        WITH ev AS (
          SELECT anonymous_user_id AS u, event_time AS t, event_id AS id, event_date AS d
          FROM read_parquet('{lake}/clickstream/**/*.parquet', hive_partitioning = true)
          WHERE event_date >= DATE '{prev_start}' AND event_date <= DATE '{end}' {host_filter}
        ), gaps AS (
          SELECT *, t - lag(t) OVER (PARTITION BY u ORDER BY t, id) AS gap FROM ev
        ), numbered AS (
          SELECT *, sum(CASE WHEN gap IS NULL OR gap > INTERVAL 30 MINUTE THEN 1 ELSE 0 END)
                      OVER (PARTITION BY u ORDER BY t, id ROWS UNBOUNDED PRECEDING) AS n
          FROM gaps
        ), visits AS (
          SELECT min(t) AS first_t, max(t) AS last_t, count(*) AS views
          FROM numbered GROUP BY u, n
        ), cur_visits AS (SELECT * FROM visits WHERE first_t >= TIMESTAMP '{start} 00:00:00')
        SELECT
          (SELECT count(*) FROM ev WHERE d >= DATE '{start}') AS pageviews,
          (SELECT count(DISTINCT u) FROM ev WHERE d >= DATE '{start}') AS visitors,
          (SELECT count(*) FROM cur_visits) AS visits,
          (SELECT avg(views) FROM cur_visits) AS views_per_visit,
          (SELECT count(*) FILTER (WHERE views = 1) / count(*) FROM cur_visits) AS bounce_rate,
          (SELECT avg(epoch(last_t) - epoch(first_t)) FROM cur_visits) AS avg_duration
        """
    ).fetchone()
    names = ["pageviews", "visitors", "visits", "views_per_visit", "bounce_rate", "avg_duration"]
    return dict(zip(names, row, strict=True))
