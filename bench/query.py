"""Median wall time of every view and five typical ad-hoc queries over a large lake.

Then issue #11 target 5's queries through ``clickstream sql`` as a user runs them: a fresh process
each (start-up, opening and checking the lake included), CSV to a pipe, median of ``--repeat``.

Usage: python bench/query.py [--rows 10000000] [--repeat 5] [--lake PATH (reuse a built lake)]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import etl_cmd, generate, scratch

from clickstream.query.session import open_lake
from clickstream.query.views import VIEW_NAMES

AD_HOC = {
    "visitors per month": "SELECT year, month, count(DISTINCT anonymous_user_id) FROM clickstream "
    "GROUP BY ALL",
    "one host, one week": "SELECT event_date, count(*) FROM clickstream WHERE url_host = "
    "'shop.example.com' AND event_date BETWEEN DATE '2024-03-01' AND DATE '2024-03-07' "
    "GROUP BY ALL",
    "top campaigns in a month": "SELECT utm_campaign, count(*) AS n FROM clickstream "
    "WHERE year = 2024 AND month = 6 AND utm_campaign IS NOT NULL GROUP BY ALL ORDER BY n DESC "
    "LIMIT 10",
    "most active visitors": "SELECT anonymous_user_id, count(*) AS n FROM clickstream GROUP BY ALL "
    "ORDER BY n DESC LIMIT 10",
    "bounce rate (sessions)": "SELECT avg(CASE WHEN is_bounce THEN 1 ELSE 0 END) FROM sessions",
    "sessions aggregate": "SELECT count(*), avg(duration_seconds), avg(is_bounce::INT) "
    "FROM sessions",
    "traffic by hour of day": "SELECT hour(event_time) AS h, count(*) FROM clickstream "
    "GROUP BY ALL "
    "ORDER BY h",
}


#: Issue #11 target 5: each under 1 s through ``clickstream sql`` on a 10M-row lake.
TARGET_5 = [
    *(f"SELECT * FROM {v}" for v in ("pageviews_daily", "traffic_sources", "top_pages", "devices")),
    "SELECT count(*), avg(duration_seconds), avg(is_bounce::INT) FROM sessions",
]


def cli_seconds(lake: Path, sql: str, repeat: int) -> float:
    cmd = [sys.executable, "-m", "clickstream", "sql", "-l", str(lake), "-f", "csv", sql]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_seconds(con, sql: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        con.execute(sql).to_arrow_table()  # columnar, as a BI tool or notebook fetches
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lake", type=Path)
    args = parser.parse_args()
    with scratch("query") as work:
        lake = args.lake
        if lake is None:
            lake = work / "lake"
            src = generate(work / "raw.csv.gz", args.rows, bad_fraction=0.0)
            subprocess.run(etl_cmd(src, lake), check=True)
        con = open_lake(lake)
        total = con.execute("SELECT count(*) FROM clickstream").fetchone()[0]
        print(f"lake rows: {total:,}; median of {args.repeat} runs each")
        for view in VIEW_NAMES:
            how = "materialised table" if con.materialised.get(view) else "computed (not fresh)"
            print(f"{view}: {how}")
        print(f"{'query':<28} {'seconds':>8}")
        queries = {f"view {v}": f"SELECT * FROM {v}" for v in VIEW_NAMES} | AD_HOC
        for name, sql in queries.items():
            print(f"{name:<28} {median_seconds(con, sql, args.repeat):8.3f}", flush=True)
        con.close()
        print("\ntarget 5 through `clickstream sql` (fresh process each, start-up included):")
        for sql in TARGET_5:
            print(f"{cli_seconds(lake, sql, args.repeat):6.3f} s  {sql}", flush=True)


if __name__ == "__main__":
    main()
