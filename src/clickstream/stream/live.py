"""``stream top``: a live terminal view of what the consumers committed, refreshed every second.

Everything shown comes from the lake's stream tables (so it is what was committed, not a guess)
plus the broker's backlog. Event-time figures ("active visitors in the last 5 minutes", page views
per minute) are relative to the newest event time seen, so replayed history looks alive too.
Values from the data are shown as plain text: a page path like ``/[red]x`` is never Rich markup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clickstream.stream.tables import connect


@dataclass
class Snapshot:
    group: str
    batches: int = 0
    events: int = 0
    events_per_second: float = 0.0
    backlog: int | None = None
    watermark: datetime | None = None
    active_visitors: int = 0
    per_minute: list[tuple[datetime, int]] = field(default_factory=list)
    top_pages: list[tuple[str, int]] = field(default_factory=list)
    top_sources: list[tuple[str, int]] = field(default_factory=list)
    dead_letters: int = 0
    late_events: int = 0


def snapshot(lake: str, group: str, backlog: Callable[[], int | None] | None = None) -> Snapshot:
    con = connect(lake)
    try:
        snap = Snapshot(group)
        g = (group,)
        row = con.execute(
            """SELECT count(*), coalesce(sum(events), 0), max(max_event_time),
                      coalesce(sum(dead_letters), 0), coalesce(sum(late_events), 0),
                      coalesce(sum(events) FILTER (
                        WHERE committed_at >= now()::TIMESTAMP - INTERVAL 10 SECOND), 0) / 10.0
               FROM stream_batches WHERE consumer_group = ?""",
            g,
        ).fetchone()
        assert row is not None
        (snap.batches, snap.events, snap.watermark, snap.dead_letters, snap.late_events,
         snap.events_per_second) = row  # fmt: skip
        if snap.watermark is not None:
            recent = "consumer_group = ? AND window_start >= ? - INTERVAL 5 MINUTE"
            args = (group, snap.watermark)
            active = con.execute(
                f"""SELECT count(DISTINCT anonymous_user_id) FROM stream_facts
                    WHERE kind = 'window_user' AND {recent}""",
                args,
            ).fetchone()
            snap.active_visitors = active[0] if active else 0
            snap.per_minute = con.execute(
                """SELECT time_bucket(INTERVAL 1 MINUTE, window_start) AS minute,
                          CAST(sum(pageviews) AS BIGINT)
                   FROM stream_windows WHERE consumer_group = ?
                   GROUP BY minute ORDER BY minute DESC LIMIT 10""",
                g,
            ).fetchall()
            snap.top_pages = con.execute(
                f"""SELECT url_path, CAST(sum(pageviews) AS BIGINT) AS n FROM stream_facts
                    WHERE kind = 'window_page' AND {recent}
                    GROUP BY url_path ORDER BY n DESC, url_path LIMIT 5""",
                args,
            ).fetchall()
            snap.top_sources = con.execute(
                f"""SELECT coalesce(utm_source, '(direct)') || ' / ' || coalesce(utm_medium, '-'),
                           CAST(sum(pageviews) AS BIGINT) AS n FROM stream_facts
                    WHERE kind = 'window_source' AND {recent}
                    GROUP BY ALL ORDER BY n DESC, 1 LIMIT 5""",
                args,
            ).fetchall()
    finally:
        con.close()
    if backlog is not None:
        snap.backlog = backlog()
    return snap


def render(snap: Snapshot) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from clickstream.query.output import printable

    # Data (group, pages, sources) may hold terminal controls: shown escaped, never obeyed.
    head = Table(
        show_header=False,
        box=None,
        title=Text(f"clickstream stream · group {printable(snap.group)}"),
    )
    head.add_column(style="bold")
    head.add_column(justify="right")
    rows = [
        ("events/s (last 10 s)", f"{snap.events_per_second:,.0f}"),
        ("consumer lag (records)", "?" if snap.backlog is None else f"{snap.backlog:,}"),
        ("active visitors (last 5 min)", f"{snap.active_visitors:,}"),
        ("events counted", f"{snap.events:,}"),
        ("batches", f"{snap.batches:,}"),
        ("late events / dead letters", f"{snap.late_events:,} / {snap.dead_letters:,}"),
        (
            "newest event time",
            "-" if snap.watermark is None else f"{snap.watermark:%Y-%m-%d %H:%M:%S}",
        ),
    ]
    for name, value in rows:
        head.add_row(Text(name), Text(value))
    tables = [head]
    for title, label, data in (
        (
            "page views per minute",
            "minute (UTC)",
            [(f"{m:%Y-%m-%d %H:%M}", n) for m, n in snap.per_minute],
        ),
        ("top pages (last 5 min)", "page", snap.top_pages),
        ("top sources (last 5 min)", "source / medium", snap.top_sources),
    ):
        table = Table(title=Text(title))
        table.add_column(Text(label))
        table.add_column(Text("page views"), justify="right")
        for key, n in data:
            # printable keeps newlines (multi-line text elsewhere): a cell must stay one line.
            table.add_row(Text(printable(str(key)).replace("\n", "\\n")), Text(f"{n:,}"))
        tables.append(table)
    return Group(*tables)


def run_top(
    lake: str,
    group: str,
    backlog: Callable[[], int | None] | None,
    console: Any,
    once: bool = False,
    duration: float | None = None,
    refresh: float = 1.0,
) -> None:
    if once:
        console.print(render(snapshot(lake, group, backlog)))
        return
    from rich.live import Live

    deadline = None if duration is None else time.monotonic() + duration
    with Live(render(snapshot(lake, group, backlog)), console=console, auto_refresh=False) as live:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(refresh)
            live.update(render(snapshot(lake, group, backlog)), refresh=True)
