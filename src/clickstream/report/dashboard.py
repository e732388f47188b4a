"""Query results -> what the page shows: KPI cards, tables and chart specs, formatted for people.

Nothing here computes a metric; it picks rows and columns and formats values.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clickstream.lake.report import RunReport
from clickstream.report import charts
from clickstream.report import format as fmt
from clickstream.report.period import Period
from clickstream.report.queries import Rows


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: float | int | None
    """The raw number (the page keeps it in a data attribute, for tests and copy-paste)."""
    shown: str
    previous: str
    change: str
    trend: str
    """up, down or flat: the arrow's direction."""
    good: bool | None
    """Whether the change is good news (bounce rate going down is)."""


#: key, label, formatter, whether higher is better, whether change is in points.
KPIS: tuple[tuple[str, str, Callable[[Any], str], bool, bool], ...] = (
    ("visitors", "Unique visitors", fmt.count, True, False),
    ("visits", "Visits", fmt.count, True, False),
    ("pageviews", "Pageviews", fmt.count, True, False),
    ("views_per_visit", "Views per visit", fmt.decimal, True, False),
    ("bounce_rate", "Bounce rate", fmt.percent, False, True),
    ("avg_duration", "Visit duration", fmt.duration, True, False),
)


def kpis(row: dict[str, Any]) -> list[Kpi]:
    cards = []
    for key, title, shown, higher_is_better, points in KPIS:
        delta = row.get(f"{key}_change")
        if delta is None or round(delta * 100, 1) == 0:
            trend = "flat"
        else:
            trend = "up" if delta > 0 else "down"
        good = None if trend == "flat" else (trend == "up") == higher_is_better
        cards.append(
            Kpi(
                key=key,
                label=title,
                value=row.get(key),
                shown=shown(row.get(key)),
                previous=shown(row.get(f"{key}_previous")),
                change=fmt.change(delta, points),
                trend=trend,
                good=good,
            )
        )
    return cards


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str = "text"
    """text, count, percent, duration or time: how a value is formatted and aligned."""
    missing: str = "(none)"


FORMATTERS: dict[str, Callable[[Any], str]] = {
    "count": fmt.count,
    "percent": fmt.percent,
    "duration": fmt.duration,
    "decimal": fmt.decimal,
    "time": fmt.timestamp,
}


#: A table cell shows at most this many characters of a value; its tooltip at most FULL_CHARS.
#: Together they bound the page's size whatever the data holds (a 300 KB URL path, say).
CELL_CHARS = 200
FULL_CHARS = 2_000


@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool = False
    missing: bool = False
    full: str = ""
    """The value, cut at FULL_CHARS, when ``text`` had to be cut (shown as the cell's tooltip)."""


def cut(text: str, limit: int) -> str:
    """``text`` of at most ``limit`` characters, ending in an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Table:
    id: str
    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    shares: list[float | None] = field(default_factory=list)
    """Each row's share of the whole (0-1), drawn as a bar behind the row."""
    note: str = ""


def _cell(value: Any, column: Column) -> Cell:
    if value is None:
        return Cell(column.missing if column.kind == "text" else fmt.NONE, missing=True)
    if column.kind == "text":
        text = _text(value)
        if len(text) <= CELL_CHARS:
            return Cell(text)
        return Cell(cut(text, CELL_CHARS), full=cut(text, FULL_CHARS))
    return Cell(FORMATTERS[column.kind](value), numeric=True)


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return fmt.timestamp(value)
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return "; ".join(_item(v) for v in value)
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _item(item: dict[str, Any]) -> str:
    """A struct such as {url_path: '/a', pageviews: 3} as '/a (3)'."""

    def numeric(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    numbers = [v for v in item.values() if numeric(v)]
    labels = ["(none)" if v is None else str(v) for v in item.values() if not numeric(v)]
    counts = f" ({', '.join(fmt.count(n) for n in numbers)})" if numbers else ""
    return " / ".join(labels) + counts


def table(id: str, title: str, rows: Rows, columns: Sequence[Column], note: str = "") -> Table:
    out = Table(id, title, list(columns), note=note)
    for row in rows:
        out.rows.append([_cell(row.get(c.key), c) for c in columns])
        share = row.get("share")
        out.shares.append(None if share is None else max(0.0, min(1.0, float(share))))
    return out


PATH = Column("path", "Page")
BREAKDOWN_TABLES: dict[str, tuple[str, list[Column]]] = {
    "top_pages": (
        "Top pages",
        [
            Column("host", "Host"),
            PATH,
            Column("visitors", "Visitors", "count"),
            Column("pageviews", "Pageviews", "count"),
        ],
    ),
    "entry_pages": (
        "Entry pages",
        [
            Column("key", "Page"),
            Column("bounce_rate", "Bounce", "percent"),
            Column("visits", "Visits", "count"),
        ],
    ),
    "exit_pages": ("Exit pages", [Column("key", "Page"), Column("visits", "Exits", "count")]),
    "sources": (
        "Sources",
        [
            Column("key", "utm_source", missing="(direct / none)"),
            Column("visitors", "Visitors", "count"),
            Column("visits", "Visits", "count"),
        ],
    ),
    "mediums": (
        "Mediums",
        [
            Column("key", "utm_medium"),
            Column("visitors", "Visitors", "count"),
            Column("visits", "Visits", "count"),
        ],
    ),
    "campaigns": (
        "Campaigns",
        [
            Column("key", "utm_campaign"),
            Column("visitors", "Visitors", "count"),
            Column("visits", "Visits", "count"),
        ],
    ),
    "browsers": (
        "Browsers",
        [Column("browser", "Browser"), Column("pageviews", "Pageviews", "count")],
    ),
    "systems": (
        "Operating systems",
        [Column("os", "OS"), Column("pageviews", "Pageviews", "count")],
    ),
    "screens": (
        "Screen sizes",
        [
            Column("screen", "Screen", missing="(unknown)"),
            Column("pageviews", "Pageviews", "count"),
        ],
    ),
    "hosts": ("Hosts", [Column("host", "Host"), Column("pageviews", "Pageviews", "count")]),
}

RUN_COLUMNS = [
    Column("finished_at", "Finished", "time"),
    Column("engine", "Engine"),
    Column("rows_read", "Read", "count"),
    Column("rows_written", "Written", "count"),
    Column("rows_rejected", "Quarantined", "count"),
    Column("rows_duplicate", "Duplicates", "count"),
    Column("seconds", "Took", "duration"),
]


def runs_table(reports: Sequence[RunReport], last: int = 8) -> Table:
    rows = [r.to_dict() for r in reversed(list(reports)[-last:])]
    return table("runs", "Last runs", rows, RUN_COLUMNS, note=f"newest first, up to {last}")


def stream_table(rows: Rows, max_columns: int = 8) -> Table:
    """The latest stream windows, whatever columns the stream statistics have."""
    keys = list(rows[0])[:max_columns] if rows else []
    columns = []
    for key in keys:
        sample = next((r[key] for r in rows if r[key] is not None), None)
        numeric = isinstance(sample, int | float) and not isinstance(sample, bool)
        columns.append(Column(key, key, "count" if numeric else "text", missing=""))
    return table("stream_windows", "Stream: latest windows", rows, columns, note="newest first")


def freshness(
    bounds: dict[str, Any], reports: Sequence[RunReport], lake: dict[str, Any], now: datetime
) -> list[tuple[str, str]]:
    last_run = reports[-1].finished_at if reports else None
    last_run_time = None
    if last_run:
        try:
            last_run_time = datetime.fromisoformat(last_run)
        except ValueError:
            last_run_time = None
    return [
        ("Newest page view", fmt.timestamp(bounds["newest_event"])),
        ("Its age", fmt.age(bounds["newest_event"], now)),
        ("Last run finished", fmt.timestamp(last_run)),
        ("Last run age", fmt.age(last_run_time, now)),
        ("Rows in the lake", fmt.count(lake["rows"])),
        ("Rows quarantined", fmt.count(lake["rejected"])),
        ("Quarantined share", fmt.percent(lake["rejected_share"])),
    ]


def chart_specs(results: dict[str, Rows], period: Period) -> dict[str, Any]:
    def pick(name: str, key: str, value: str) -> tuple[list[Any], list[Any]]:
        rows = results[name]
        return [r[key] for r in rows], [r[value] for r in rows]

    return {
        "timeseries": charts.timeseries(results["timeseries"], period.hourly),
        "sources": charts.bars(*pick("sources", "key", "visits"), "Visits", "(direct / none)"),
        "browsers": charts.donut(*pick("browsers", "browser", "pageviews")),
        "systems": charts.bars(*pick("systems", "os", "pageviews"), "Pageviews"),
        "screens": charts.bars(*pick("screens", "screen", "pageviews"), "Pageviews", "(unknown)"),
        "hosts": charts.bars(*pick("hosts", "host", "pageviews"), "Pageviews"),
        "rejected": charts.bars(*pick("rejected", "reason", "rows"), "Rows"),
    }
