"""The analytics views, defined once as DuckDB SQL files in ``sql/`` and rendered per engine."""

from __future__ import annotations

from importlib import resources

#: View name -> file, in dependency order (all read the ``clickstream`` table).
VIEW_NAMES: tuple[str, ...] = (
    "pageviews_daily",
    "traffic_sources",
    "top_pages",
    "devices",
    "sessions",
)

#: The stream's views (DuckDB only), over ``stream_facts``: see clickstream.stream.tables.
STREAM_VIEW_NAMES: tuple[str, ...] = (
    "stream_batches",
    "stream_windows",
    "stream_windows_hourly",
    "stream_late",
    "stream_dead_letters",
)


def view_sql(name: str) -> str:
    """The SELECT behind a view, in DuckDB's dialect (the canonical one)."""
    text = resources.files("clickstream.query").joinpath("sql", f"{name}.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return body.strip().rstrip(";")
