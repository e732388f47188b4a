"""``clickstream report``: query the lake once (in parallel), render, write one HTML file."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from clickstream.errors import ClickstreamError, ConfigError, LakeError
from clickstream.report import dashboard as dash
from clickstream.report import format as fmt
from clickstream.report.period import Period, choose_period
from clickstream.report.queries import Rows

Progress = Callable[[str, float | None], None]
PLOTLY_VERSION = "4.1.1"


@dataclass(frozen=True)
class ReportOptions:
    lake: str
    """Lake root: a folder or an s3:// URI."""
    out: Path
    """The HTML file to write (replaced atomically)."""
    start: date | None = None
    """First UTC day of the period; default: 30 days before ``end``."""
    end: date | None = None
    """Last UTC day of the period; default: the last day with data."""
    host: str | None = None
    """Only page views of this host (url_host); default: every host."""


@dataclass(frozen=True)
class ReportResult:
    path: Path
    size: int
    period: Period
    query_seconds: float
    total_seconds: float


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def normalise_host(host: str | None) -> str | None:
    """--host as the lake writes url_host: lower case, without scheme, user info, path or the
    root's trailing dot. A port stays: the lake's hosts never have one, so it matches nothing
    and the error lists the hosts there are.

    >>> normalise_host(" HTTPS://user@WWW.Example.com./a?b#c ")
    'www.example.com'
    """
    if host is None:
        return None
    cleaned = _SCHEME.sub("", host.strip())
    cleaned = re.split(r"[/?#]", cleaned, maxsplit=1)[0]
    cleaned = cleaned.rpartition("@")[2].lower().rstrip(".")
    if not cleaned:
        raise ConfigError(f"--host '{host}': give a host name such as www.example.com")
    return cleaned


def target(out: Path) -> Path:
    """The file --out names, links followed (the report replaces the file, never the link)."""
    return Path(os.path.realpath(out))


def inside_lake(out: Path, lake: str) -> Path | None:
    """The local lake's real root when --out (links followed) lands inside it, else None.

    An s3:// lake cannot hold a local file, so only a local lake is checked.
    """
    from clickstream import s3

    if s3.is_s3(lake) or "://" in lake or not lake.strip():
        return None
    root = Path(os.path.realpath(lake))
    real = target(out)
    return root if real == root or root in real.parents else None


def check_out(out: Path, lake: str) -> None:
    """Refuse an --out that cannot be written, or would write into the lake, before any work."""
    root = inside_lake(out, lake)
    if root is not None:
        raise ConfigError(
            f"--out {out}: is inside the lake ({root}); a report never writes into the lake, "
            "name a file outside it"
        )
    real = target(out)
    if real.is_dir():
        raise ConfigError(f"--out {out}: is a folder; name a file, such as {out / 'report.html'}")
    if real.exists() and not real.is_file():
        raise ConfigError(f"--out {out}: is not a regular file (a device, pipe or socket)")
    parent = real.parent
    if not parent.exists():
        raise ConfigError(f"--out {out}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise ConfigError(f"--out {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: no permission to write in {parent}")


def write_atomic(out: Path, text: str, lake: str) -> int:
    """Write via a temporary file in the same folder, so a reader never sees half a report."""
    data = text.encode()
    # Checked again: a link may have been pointed into the lake while the queries ran.
    check_out(out, lake)
    real = target(out)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            # On disk before the rename: after a power cut the name holds the old or new report.
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, real)
        tmp = None
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot write it ({err.strerror or err})") from None
    finally:  # also on Ctrl-C: no half-written temporary file left beside the report
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return len(data)


def build_report(options: ReportOptions, progress: Progress | None = None) -> ReportResult:
    """Compute every number in one read-only DuckDB session over the lake and write the page."""
    from clickstream.lake.store import open_store
    from clickstream.query.session import open_lake
    from clickstream.report import queries as q
    from clickstream.report.render import render

    started = time.perf_counter()
    say: Progress = progress or (lambda stage, fraction: None)
    host = normalise_host(options.host)
    check_out(options.out, options.lake)
    say("opening the lake", 0.0)
    session = open_lake(options.lake)
    try:
        say("finding the period", 0.05)
        bounds = q.fetch(session, "bounds", q.bounds_sql(host))[0]
        if host is not None and bounds["first_day"] is None:
            raise LakeError(_unknown_host(host, q.fetch(session, "hosts", q.HOSTS_SQL)))
        period = choose_period(
            options.start, options.end, bounds["first_day"], bounds["last_day"], host
        )
        # The daily series spans the days with data inside the period, not the whole period.
        days = period.within(bounds["first_day"], bounds["last_day"])
        queries = q.period_queries(period, host, days)
        total = len(queries)

        def done(name: str, finished: int) -> None:
            say(f"querying ({finished}/{total}: {name})", 0.1 + 0.8 * finished / total)

        results = q.run_all(session, queries, done)
        kpi_row, visit_breakdowns = q.split_visits(results.pop("visits"))
        results.update(visit_breakdowns, kpis=[kpi_row])
        stream = _stream_windows(session) if q.has_table(session, q.STREAM_WINDOWS) else None
    finally:
        session.close()
    query_seconds = time.perf_counter() - started
    if not results["kpis"][0]["pageviews"]:
        on_host = f" on {host}" if host else ""
        raise LakeError(
            f"no page views{on_host} between {period.start} and {period.end}; the lake has "
            f"page views{on_host} from {bounds['first_day']} to {bounds['last_day']}"
        )
    say("reading run reports", 0.9)
    reports = open_store(options.lake).reports()
    say("rendering", 0.95)
    context = _context(options, host, period, bounds, results, reports, query_seconds)
    context["tables"]["stream_windows"] = stream
    page = render(context, {"charts": dash.chart_specs(results, period)})
    size = write_atomic(options.out, page, options.lake)
    say("done", 1.0)
    return ReportResult(options.out, size, period, query_seconds, time.perf_counter() - started)


def _unknown_host(host: str, rows: list[dict[str, Any]]) -> str:
    """No page views on --host: say which hosts the lake has (the busiest few)."""
    if not rows:
        return f"no page views on {host}: the lake holds no page views"
    names = [fmt.NONE if r["host"] is None else dash.cut(str(r["host"]), 100) for r in rows]
    more = rows[0]["hosts"] - len(rows)
    listed = ", ".join(names) + (f" and {more:,} more" if more > 0 else "")
    return f"no page views on {host}; hosts in the lake (most page views first): {listed}"


def _stream_windows(session: Any) -> dash.Table | None:
    """The latest stream windows, or None when the lake holds no stream statistics.

    Optional: a failure shows on the page as a note instead of failing the report.
    """
    from clickstream.report import queries as q

    try:
        rows = q.fetch(session, "stream_windows", q.STREAM_SQL)
    except ClickstreamError as err:
        return dash.table("stream_windows", "Stream: latest windows", [], [], note=str(err))
    return dash.stream_table(rows) if rows else None


def _context(
    options: ReportOptions,
    host: str | None,
    period: Period,
    bounds: dict[str, Any],
    results: dict[str, Rows],
    reports: list[Any],
    seconds: float,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    tables: dict[str, dash.Table | None] = {
        name: dash.table(name, title, results[name], columns)
        for name, (title, columns) in dash.BREAKDOWN_TABLES.items()
    }
    tables["rejected"] = dash.table(
        "rejected",
        "Quarantined rows by reason",
        results["rejected"],
        [dash.Column("reason", "Reason"), dash.Column("rows", "Rows", "count")],
        note="whole lake",
    )
    tables["runs"] = dash.runs_table(reports)
    tables["stream_windows"] = None
    chart_sources = ("sources", "browsers", "systems", "screens", "hosts", "rejected")
    return {
        "period": period,
        "previous": period.previous,
        "hourly": period.hourly,
        "host": host,
        "lake": options.lake,
        "generated": fmt.timestamp(now),
        "seconds": f"{seconds:.1f} s",
        "plotly_version": PLOTLY_VERSION,
        "kpis": dash.kpis(results["kpis"][0]),
        "tables": tables,
        "empty_charts": [name for name in chart_sources if not results[name]],
        "freshness": dash.freshness(bounds, reports, results["lake"][0], now),
    }
