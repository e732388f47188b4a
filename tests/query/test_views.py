"""Each view's numbers against an independent computation in plain Python."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from clickstream.pipeline import EtlOptions, run_etl
from clickstream.query.session import open_lake, run_query
from tests.conftest import write_csv

BASE = int(datetime(2024, 1, 31, 23, 30, tzinfo=UTC).timestamp())  # 30 minutes before February
M = 60

# (user, seconds after BASE, url, browser, os, resolution)
EVENTS = [
    ("alice", 0, "https://shop.example.com/?utm_source=google&utm_medium=cpc&utm_campaign=x", "Chrome", "macOS", "1440x900"),
    ("alice", 29 * M, "https://shop.example.com/cart", "Chrome", "macOS", "1440x900"),  # +29: same
    ("alice", 59 * M, "https://shop.example.com/checkout", "Chrome", "macOS", "1440x900"),  # +30: same, crosses into February
    ("alice", 90 * M + 1, "https://shop.example.com/", "Chrome", "macOS", "1440x900"),  # +31m1s: new
    ("bob", 10 * M, "https://blog.example.org/post?utm_source=news&utm_medium=email", "Firefox", "Linux", "1920x1080"),
    ("bob", 41 * M, "https://blog.example.org/post", "Firefox", "Linux", "1920x1080"),  # +31: new
    ("bob", 41 * M, "https://blog.example.org/about", "Firefox", "Linux", "1920x1080"),  # same second
    ("carol", 5 * M, "https://shop.example.com/", "Safari", "iOS", "390x844"),
    ("carol", 5 * M + 30 * M, "https://shop.example.com/cart?utm_source=ig", "Safari", "iOS", "0x0"),  # +30 exactly
    ("dave", 3 * 86400, "https://shop.example.com/?utm_source=google&utm_medium=cpc&utm_campaign=x", "Edge", "Windows", "1920x1080"),
]  # fmt: skip


def _py_events():
    out = []
    for user, dt, url, browser, os_, res in EVENTS:
        parts = urlsplit(url)
        params = {}
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            params.setdefault(k.lower(), v or None)
        w, _, h = res.partition("x")
        size = (int(w), int(h)) if int(w) > 0 and int(h) > 0 else (None, None)
        raw = [user, url, str(BASE + dt), browser, os_, res]
        out.append(
            {
                "event_id": hashlib.md5("\x1f".join(raw).encode()).hexdigest(),
                "user": user,
                "time": datetime.fromtimestamp(BASE + dt, UTC).replace(tzinfo=None),
                "host": parts.hostname,
                "path": parts.path or "/",
                "browser": browser,
                "os": os_,
                "size": size,
                **{k: params.get(f"utm_{k}") for k in ("source", "medium", "campaign")},
            }
        )
    return out


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("views")
    lines = [f"{u},{url},{BASE + dt},{b},{o},{r}" for u, dt, url, b, o, r in EVENTS]
    src = write_csv(tmp / "events.csv", lines)
    run_etl(EtlOptions(input=str(src), lake=tmp / "lake"))
    return tmp / "lake"


@pytest.fixture(scope="module")
def con(lake: Path):
    return open_lake(lake)


def rows(con, sql: str) -> list[tuple]:
    return run_query(con, sql)[1]


def _grouped(keyfn) -> set[tuple]:
    views, users = Counter(), defaultdict(set)
    for e in _py_events():
        views[keyfn(e)] += 1
        users[keyfn(e)].add(e["user"])
    return {(*k, views[k], len(users[k])) for k in views}


def test_pageviews_daily(con) -> None:
    expected = _grouped(lambda e: (e["time"].date(),))
    assert set(rows(con, "SELECT * FROM pageviews_daily")) == expected


def test_traffic_sources(con) -> None:
    expected = _grouped(lambda e: (e["source"], e["medium"], e["campaign"]))
    assert set(rows(con, "SELECT * FROM traffic_sources")) == expected


def test_top_pages(con) -> None:
    expected = _grouped(lambda e: (e["host"], e["path"]))
    assert set(rows(con, "SELECT * FROM top_pages")) == expected


def test_devices(con) -> None:
    expected = _grouped(lambda e: (e["browser"], e["os"], *e["size"]))
    assert set(rows(con, "SELECT * FROM devices")) == expected


def _py_sessions():
    by_user = defaultdict(list)
    for e in _py_events():
        by_user[e["user"]].append((e["time"], e["event_id"], e))
    sessions = []
    for evs in by_user.values():
        current: list = []
        for t, _, e in sorted(evs, key=lambda x: (x[0], x[1])):
            if current and t - current[-1]["time"] > timedelta(minutes=30):
                sessions.append(current)
                current = []
            current.append(e)
        sessions.append(current)
    return sessions


def test_sessions(con) -> None:
    got = rows(
        con,
        """SELECT anonymous_user_id, session_start, session_end, duration_seconds,
                              pageviews, landing_path, utm_source, utm_medium, utm_campaign,
                              is_bounce FROM sessions""",
    )
    expected = {
        (
            s[0]["user"],
            s[0]["time"],
            s[-1]["time"],
            (s[-1]["time"] - s[0]["time"]).total_seconds(),
            len(s),
            s[0]["path"],
            s[0]["source"],
            s[0]["medium"],
            s[0]["campaign"],
            len(s) == 1,
        )
        for s in _py_sessions()
    }
    assert set(got) == expected
    # 29 and exactly 30 minutes stay in a session, 31 starts a new one, across a month boundary.
    alice = sorted(r for r in got if r[0] == "alice")
    assert [r[4] for r in alice] == [3, 1]
    assert alice[0][1].month == 1 and alice[0][2].month == 2


def test_session_ids_are_unique_and_stable(con) -> None:
    ids = [r[0] for r in rows(con, "SELECT session_id FROM sessions")]
    assert len(ids) == len(set(ids)) == len(_py_sessions())
    assert sorted(ids) == sorted(r[0] for r in rows(con, "SELECT session_id FROM sessions"))


def test_exit_path_is_the_last_page_even_on_ties(con) -> None:
    bob = rows(
        con,
        "SELECT landing_path, exit_path, pageviews FROM sessions "
        "WHERE anonymous_user_id = 'bob' ORDER BY session_start",
    )
    assert bob[0] == ("/post", "/post", 1)
    assert bob[1][2] == 2 and {bob[1][0], bob[1][1]} == {"/post", "/about"}


def test_lake_tolerates_older_schema_files(lake: Path) -> None:
    # A file from an earlier schema version (fewer columns) still reads, missing columns as NULL.
    import duckdb

    # Under a committed run's id (queries read only those), with a file number no run wrote.
    run = sorted(p.stem for p in (lake / "_runs").glob("*.json"))[0]
    old = lake / "clickstream" / "year=2023" / "month=12" / f"{run}_999.parquet"
    old.parent.mkdir(parents=True)
    duckdb.sql(
        f"COPY (SELECT 'old' AS event_id, 'zed' AS anonymous_user_id, "
        f"TIMESTAMP '2023-12-01' AS event_time) TO '{old}' (FORMAT parquet)"
    )
    try:
        again = open_lake(lake)
        assert rows(again, "SELECT url_host, year FROM clickstream WHERE event_id = 'old'") == [
            (None, 2023)
        ]
    finally:
        old.unlink()
