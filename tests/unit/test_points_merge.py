"""The full build's page-view merge (``points_merge_sql``) against the general merge and the view.

Adversarial page views: times at exactly 30 minutes and 30 minutes + 1 µs apart, ties in time
broken by id, the same page view twice, NULL and real UTMs. All three must give the same rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream.lake.sessions_sql import merge_sql, points_merge_sql, points_sql
from clickstream.query.views import view_sql

T0 = datetime(2024, 1, 31, 23, 0)
STEPS = [0, 1, 1_800_000_000, 1_800_000_001, 1_799_999_999, 60_000_000, 7_200_000_000]

view = st.tuples(
    st.sampled_from(["u1", "u2", "u3"]),
    st.sampled_from(STEPS),
    st.sampled_from(["a", "b", "c", "d"]),  # the id: with a repeated time, ties
    st.sampled_from(["/", "/x", "/y"]),
    st.sampled_from([None, "google", "news"]),
    st.sampled_from([None, "cpc"]),
)


def _sessions(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(f"SELECT * EXCLUDE (exit_event_id) FROM ({sql}) ORDER BY ALL").fetchall()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(view, max_size=25), st.booleans())
def test_points_merge_equals_the_general_merge_and_the_view(rows: list, repeat: bool) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE clickstream (anonymous_user_id VARCHAR, event_id VARCHAR, event_time "
        "TIMESTAMP, url_path VARCHAR, utm_source VARCHAR, utm_medium VARCHAR, utm_campaign VARCHAR)"
    )
    clock: dict[str, datetime] = {}
    data = []
    for user, step, key, path, source, medium in rows:
        clock[user] = clock.get(user, T0) + timedelta(microseconds=step)
        # An id names the page view's content, as event_id does: the same id, the same row.
        when = clock[user]
        event_id = f"{key}-{user}-{when.isoformat()}-{path}-{source}-{medium}"
        data.append((user, event_id, when, path, source, medium, None))
    if repeat and data:
        data.append(data[len(data) // 2])  # the same page view twice
    if data:
        con.executemany("INSERT INTO clickstream VALUES (?, ?, ?, ?, ?, ?, ?)", data)
    fast = con.execute(f"SELECT * FROM ({points_merge_sql('clickstream')}) ORDER BY ALL").fetchall()
    general = con.execute(f"SELECT * FROM ({merge_sql(points_sql('clickstream'))}) ORDER BY ALL")
    assert fast == general.fetchall()
    assert (
        _sessions(con, points_merge_sql("clickstream"))
        == con.execute(f"SELECT * FROM ({view_sql('sessions')}) ORDER BY ALL").fetchall()
    )
