"""``clickstream stream``: publish the lake onto a stream, consume it into statistics, watch it."""

from __future__ import annotations

import math
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from clickstream.cli._common import err_console, out_console
from clickstream.errors import ConfigError

stream_app = typer.Typer(
    name="stream",
    help="Put lake events onto a stream (embedded Redis, redis://, ...) and compute live "
    "statistics back into the lake.",
    no_args_is_help=True,
)

LAKE = typer.Option("lake", "--lake", "-l", help="Lake root folder.")
URL_HELP = "Broker: redis://host:port/NAME; omit for the embedded broker next to the lake."
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, option: str, lo: int = 0, hi: int = 366 * 86400) -> int:
    """Whole seconds from '90', '90s', '1m', '2h', '1d', within [lo, hi]."""
    match = re.fullmatch(r"\s*(\d{1,12})\s*([smhd]?)\s*", text)
    if not match:
        raise ConfigError(f"{option} {text!r}: expected a duration like 30s, 1m, 2h or 1d")
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not lo <= seconds <= hi:
        raise ConfigError(f"{option} {text!r}: expected {_span(lo)} to {_span(hi)}")
    return seconds


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def check_seconds(
    value: float | None, option: str, allow_zero: bool = True, hi: float = 30 * 86400
) -> None:
    """Refuse NaN, infinities, negatives and absurd sizes (NaN would compare False and never
    expire; a huge value overflows the date arithmetic downstream)."""
    if value is None:
        return
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero) or value > hi:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(
            f"{option} {value}: expected a finite number of seconds {bound} and at most {hi:g}"
        )


def check_range(value: int, option: str, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise ConfigError(f"{option} {value}: expected {lo:,} to {hi:,}")


@contextmanager
def _graceful(stop: Any) -> Iterator[None]:
    """SIGINT/SIGTERM ask the loop to finish its current step and return (nothing lost)."""
    from clickstream.stream import deadline

    deadline.reset()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        # From here every broker call has a few seconds at most: a healthy broker still takes
        # the batch in hand (milliseconds), a stuck one cannot hold the process (deadline.py).
        deadline.interrupt()
        err_console.print("stopping after the current batch…", highlight=False)
        stop()

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _require_lake(lake: str) -> None:
    """A mistyped path is refused before any broker starts (it would start one next to it)."""
    from clickstream.errors import LakeError
    from clickstream.lake.store import open_store

    if not open_store(lake).exists():
        raise LakeError(f"no lake at {lake} (run `clickstream etl` first)")


@stream_app.command()
def publish(
    lake: str = LAKE,
    to: str = typer.Option(None, "--to", help=URL_HELP),
    follow: bool = typer.Option(False, "--follow", help="Keep publishing each new ETL run."),
    poll: float = typer.Option(
        2.0, "--poll", help="Seconds between looks for new runs (--follow)."
    ),
) -> None:
    """Publish every lake event not yet published, run by run, in event-time order."""
    check_seconds(poll, "--poll", allow_zero=False, hi=86400)
    from clickstream.stream.publisher import publish as run_publish

    stopping = {"now": False}

    def stop() -> None:
        stopping["now"] = True

    with _graceful(stop):
        report = run_publish(
            lake, to, follow=follow, poll_seconds=poll, stop=lambda: stopping["now"]
        )
    rate = report.events / report.seconds if report.seconds else 0.0
    err_console.print(
        f"published {report.events:,} events from {report.runs} run(s) "
        f"in {report.seconds:.2f}s ({rate:,.0f} events/s)",
        highlight=False,
        soft_wrap=True,
    )


@stream_app.command()
def stats(
    lake: str = LAKE,
    from_: str = typer.Option(None, "--from", help=URL_HELP),
    batch_size: int = typer.Option(1000, "--batch-size", help="Records per batch (1-100,000)."),
    window: str = typer.Option("1m", "--window", help="Tumbling window (divides 30m), e.g. 1m."),
    lateness: str = typer.Option(
        "1h", "--lateness", help="Events this far behind the newest are late."
    ),
    idle_exit: float = typer.Option(
        None, "--idle-exit", help="Stop after this many seconds without new records."
    ),
    group: str = typer.Option("stats", "--group", help="Consumer group."),
    consumer: str = typer.Option(
        None, "--consumer", help="This consumer's name (default host-pid)."
    ),
    claim_idle: str = typer.Option(
        "30s", "--claim-idle", help="Take over others' records unacknowledged this long."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-batch lines."),
) -> None:
    """Consume in a consumer group; commit statistics into the lake, then acknowledge."""
    check_seconds(idle_exit, "--idle-exit")
    check_range(batch_size, "--batch-size", 1, 100_000)
    lateness_s = parse_duration(lateness, "--lateness", 0, 366 * 86400)
    # 0 would let every member claim the records the others are working on, over and over.
    claim_idle_s = parse_duration(claim_idle, "--claim-idle", 1, 86400)
    from clickstream.stream.consumer import Consumer, ConsumerOptions

    window_s = parse_duration(window, "--window", 0, 1800)
    if window_s <= 0 or 1800 % window_s:
        raise ConfigError(
            f"--window {window}: must divide 30 minutes (e.g. 10s, 1m, 5m, 15m, 30m), so sessions "
            "are exact and windows roll up into hours"
        )
    options = ConsumerOptions(
        lake=lake,
        url=from_,
        group=group,
        consumer=consumer or "",
        batch_size=batch_size,
        window_seconds=window_s,
        lateness_seconds=lateness_s,
        idle_exit=idle_exit,
        claim_idle_ms=claim_idle_s * 1000,
    )
    worker = Consumer(options)

    def show(summary: Any) -> None:
        if not quiet:
            err_console.print(
                f"batch: {summary.records:,} records, {summary.events:,} events, "
                f"{summary.late_events:,} late, {summary.dead_letters:,} dead letters",
                highlight=False,
                soft_wrap=True,
            )

    try:
        with _graceful(worker.stop):
            report = worker.run(show)
    finally:
        worker.close()
    err_console.print(
        f"consumer {options.consumer}: {report.batches:,} batches, {report.events:,} events "
        f"({report.late_events:,} late, {report.dead_letters:,} dead letters, "
        f"{report.skipped_committed:,} already committed) in {report.seconds:.1f}s",
        highlight=False,
        soft_wrap=True,
    )


@stream_app.command()
def top(
    lake: str = LAKE,
    from_: str = typer.Option(None, "--from", help=URL_HELP),
    group: str = typer.Option("stats", "--group", help="Consumer group."),
    once: bool = typer.Option(False, "--once", help="Print one snapshot and exit."),
    duration: float = typer.Option(None, "--duration", help="Stop after this many seconds."),
) -> None:
    """Live view: events/s, consumer lag, active visitors, page views per minute, top pages."""
    check_seconds(duration, "--duration")
    from clickstream.stream.live import run_top
    from clickstream.stream.tables import require_local
    from clickstream.stream.transports import open_transport

    require_local(lake, "top")
    _require_lake(lake)
    transport = open_transport(from_, lake)
    try:
        run_top(
            lake, group, lambda: transport.backlog(group), out_console, once=once, duration=duration
        )
    finally:
        transport.close()


@stream_app.command()
def rollup(
    lake: str = LAKE,
    by: str = typer.Option("day", "--by", help="hour or day."),
    group: str = typer.Option("stats", "--group", help="Consumer group."),
) -> None:
    """Page views and estimated visitors per hour/day, from the windows' HLL sketches alone."""
    from rich.table import Table

    from clickstream.stream.rollup import rollup as run_rollup
    from clickstream.stream.tables import require_local

    require_local(lake, "rollup")
    _require_lake(lake)

    table = Table("period start (UTC)", "page views", "visitors (HLL estimate)", "sketches")
    for p in run_rollup(lake, by, group):
        table.add_row(
            f"{p.start:%Y-%m-%d %H:%M}", f"{p.pageviews:,}", f"{p.visitors_estimate:,.0f}",
            f"{p.sketches:,}",
        )  # fmt: skip
    out_console.print(table)


@stream_app.command("stop-broker")
def stop_broker(lake: str = LAKE) -> None:
    """Shut down the embedded broker of this lake (its data stays in its append-only file)."""
    from clickstream.stream import broker

    folder = broker.broker_dir(lake)
    stopped = broker.stop(folder)
    err_console.print(f"embedded broker in {folder}: {'stopped' if stopped else 'not running'}")


def register(app: typer.Typer) -> None:
    app.add_typer(stream_app)
