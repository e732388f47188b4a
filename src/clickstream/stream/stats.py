"""One batch's statistics, computed in DuckDB over the whole batch and written as one file.

Windows are partial per batch and merged by the views, so nothing here depends on which batch or
which consumer saw an event: every window's page views, visitors and sessions come out the same.
Late events (older than --lateness behind the newest event seen) are still counted in their
window (windows are revised, never finalised early) and also listed as ``late`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from clickstream.stream.tables import FACT_COLUMNS

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

#: HLL precision: 2^12 buckets, about 1.6% standard error, a few KiB at most per sketch.
HLL_LG_K = 12


@dataclass(frozen=True)
class BatchSettings:
    batch_id: str
    consumer: str
    window_seconds: int
    lateness_seconds: int
    watermark: datetime | None
    """Newest event time committed before this batch (None: nothing yet)."""
    read_at: datetime


@dataclass(frozen=True)
class BatchSummary:
    records: int
    events: int
    late_events: int
    dead_letters: int
    max_event_time: datetime | None


def _ts(value: datetime | None) -> str:
    """A TIMESTAMP literal, in UTC (aware values are converted; naive ones are UTC already)."""
    if value is None:
        return "NULL"
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


def _sketches(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """One serialized HLL sketch of the visitors per window (DataSketches has no bulk update)."""
    import datasketches
    import pyarrow as pa

    rows = con.execute(
        "SELECT window_start, list(DISTINCT anonymous_user_id) FROM good GROUP BY window_start"
    ).fetchall()
    starts, blobs = [], []
    for start, users in rows:
        sketch = datasketches.hll_sketch(HLL_LG_K)
        for user in users:
            sketch.update(user)
        starts.append(start)
        blobs.append(sketch.serialize_compact())
    return pa.table(
        {
            "window_start": pa.array(starts, pa.timestamp("us")),
            "sketch": pa.array(blobs, pa.binary()),
        }
    )


def write_batch(
    con: duckdb.DuckDBPyConnection, decoded: str, settings: BatchSettings, out: Path
) -> BatchSummary:
    """Write the batch file for table ``decoded`` (see records.decode) to ``out``."""
    s = settings
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE good AS
        WITH valid AS (
          SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY ordinal) AS copy
          FROM {decoded} WHERE reason IS NULL
        ), seen AS (
          SELECT *, coalesce(greatest({_ts(s.watermark)}, max(event_time) OVER (
                   ORDER BY ordinal ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)),
                   {_ts(s.watermark)}) AS newest_before
          FROM valid WHERE copy = 1
        )
        SELECT *, time_bucket(INTERVAL '{s.window_seconds} seconds', event_time) AS window_start,
               event_time < newest_before - INTERVAL '{s.lateness_seconds} seconds' AS is_late
        FROM seen""")
    con.register("sketches", _sketches(con))
    columns = ", ".join(f"CAST({c.name} AS {c.type}) AS {c.name}" for c in FACT_COLUMNS)
    con.execute(f"""
        COPY (
          SELECT {columns} FROM (
            SELECT 'window_user' AS kind, window_start, anonymous_user_id,
                   min(event_time) AS first_time, max(event_time) AS last_time,
                   count(*) AS pageviews
            FROM good GROUP BY window_start, anonymous_user_id
            UNION ALL BY NAME
            SELECT 'window_page' AS kind, window_start, url_path, count(*) AS pageviews
            FROM good GROUP BY window_start, url_path
            UNION ALL BY NAME
            SELECT 'window_source' AS kind, window_start, utm_source, utm_medium,
                   count(*) AS pageviews
            FROM good GROUP BY window_start, utm_source, utm_medium
            UNION ALL BY NAME
            SELECT 'window_sketch' AS kind, window_start, sketch FROM sketches
            UNION ALL BY NAME
            SELECT 'late' AS kind, window_start, event_id, anonymous_user_id, event_time,
                   newest_before AS watermark, stream_id
            FROM good WHERE is_late
            UNION ALL BY NAME
            SELECT 'dead_letter' AS kind, stream_id, reason, payload
            FROM {decoded} WHERE reason IS NOT NULL
            UNION ALL BY NAME
            SELECT 'batch' AS kind,
                   (SELECT count(*) FROM {decoded}) AS records,
                   count(*) AS events,
                   (SELECT count(*) FROM {decoded} WHERE reason IS NULL) - count(*) AS duplicates,
                   count(*) FILTER (WHERE is_late) AS late_events,
                   (SELECT count(*) FROM {decoded} WHERE reason IS NOT NULL) AS dead_letters,
                   min(event_time) AS min_event_time, max(event_time) AS max_event_time,
                   count(DISTINCT anonymous_user_id) AS unique_users,
                   {_ts(s.read_at)} AS read_at,
                   now()::TIMESTAMP AS committed_at,
                   date_diff('microsecond', {_ts(s.read_at)}, now()::TIMESTAMP) / 1e6
                     AS processing_seconds,
                   date_diff('microsecond', max(event_time), now()::TIMESTAMP) / 1e6
                     AS event_lag_seconds,
                   {s.window_seconds} AS window_seconds, {s.lateness_seconds} AS lateness_seconds,
                   (SELECT list(stream_id ORDER BY ordinal) FROM {decoded}) AS offsets
            FROM good
          ), (SELECT '{s.batch_id}' AS batch_id, '{s.consumer}' AS consumer)
        ) TO '{str(out).replace("'", "''")}' (FORMAT parquet, COMPRESSION zstd)""")
    row = con.execute(
        f"""SELECT (SELECT count(*) FROM {decoded}), count(*), count(*) FILTER (WHERE is_late),
                   (SELECT count(*) FROM {decoded} WHERE reason IS NOT NULL), max(event_time)
            FROM good"""
    ).fetchone()
    assert row is not None
    return BatchSummary(*row)
