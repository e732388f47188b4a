"""The stream step of ``clickstream demo``: publish the fresh lake, consume it, show windows."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from clickstream.stream import broker
from clickstream.stream.tables import FOLDER


def demo_stream(lake: str, out: Any, err: Any, windows: int = 5) -> None:
    """Run a short stream on the embedded broker and print the first windows.

    The demo rebuilds its lake from scratch, so the previous demo's stream (broker data,
    statistics, publish checkpoint) is removed first and the broker is stopped at the end.
    """
    from rich.table import Table
    from rich.text import Text

    from clickstream.stream.consumer import ConsumerOptions, run_consumer
    from clickstream.stream.publisher import publish
    from clickstream.stream.tables import connect

    folder = broker.broker_dir(lake)
    broker.stop(folder)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(Path(lake) / FOLDER, ignore_errors=True)
    try:
        sent = publish(lake)
        report = run_consumer(ConsumerOptions(lake=lake, idle_exit=0.5, consumer="demo"))
    finally:
        broker.stop(folder)
    err.print(
        f"stream: published {sent.events:,} events to the embedded broker in {sent.seconds:.1f}s; "
        f"consumed {report.events:,} in {report.batches:,} batches of up to 1,000 in "
        f"{report.seconds:.1f}s",
        highlight=False,
        soft_wrap=True,
    )
    con = connect(lake)
    rows = con.execute(
        """SELECT window_start, window_end, pageviews, visitors, sessions_started,
                  top_pages[1].url_path
           FROM stream_windows ORDER BY window_start LIMIT ?""",
        (windows,),
    ).fetchall()
    table = Table(title="First stream windows (clickstream sql: SELECT * FROM stream_windows)")
    for name in ("window start (UTC)", "end", "page views", "visitors", "sessions", "top page"):
        table.add_column(name)
    for row in rows:
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    out.print(table)
