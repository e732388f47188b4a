"""The stream's statistics in the lake: one fact table, many row kinds, views on top.

Each consumed batch is ONE Parquet file, ``<lake>/stream/consumer_group=<G>/<batch_id>.parquet``,
holding every statistic the batch contributes *and* the stream offsets it covers (kind
``batch``). A file is the unit of commit: it appears whole (rename on a local lake) or not at
all, so statistics and offsets can never disagree. The views in query/sql/stream_*.sql merge the
partial rows of all batches, which makes every window exact whatever the batch boundaries were.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clickstream.contract.schema import Column
from clickstream.errors import StreamError

if TYPE_CHECKING:
    import duckdb

    from clickstream.lake.store import LakeStore

log = logging.getLogger(__name__)

FOLDER = "stream"
#: The base table of the stream views in the query layer.
STREAM_FACTS = "stream_facts"
GROUP_KEY = "consumer_group"

#: Row kinds and what they hold.
KINDS: dict[str, str] = {
    "batch": "one per batch: counts, event-time range, offsets covered, settings",
    "window_user": "per window and visitor: first/last event time, page views (exact visitors)",
    "window_page": "per window and url_path: page views",
    "window_source": "per window and utm_source/utm_medium: page views",
    "window_sketch": "per window: Apache DataSketches HLL of the visitors (mergeable)",
    "late": "one per late event (older than --lateness behind the newest seen)",
    "dead_letter": "one per malformed record, with its reason",
}

FACT_COLUMNS: tuple[Column, ...] = (
    Column("kind", "VARCHAR", "row kind (KINDS)"),
    Column("batch_id", "VARCHAR", "the batch that wrote the row"),
    Column("consumer", "VARCHAR", "the consumer that wrote the batch"),
    Column("window_start", "TIMESTAMP", "tumbling event-time window start, UTC"),
    Column("anonymous_user_id", "VARCHAR", "visitor"),
    Column("first_time", "TIMESTAMP", "visitor's first event time in the window (this batch)"),
    Column("last_time", "TIMESTAMP", "visitor's last event time in the window (this batch)"),
    Column("pageviews", "BIGINT", "page views"),
    Column("url_path", "VARCHAR", "page"),
    Column("utm_source", "VARCHAR", "traffic source"),
    Column("utm_medium", "VARCHAR", "traffic medium"),
    Column("sketch", "BLOB", "HLL sketch (datasketches hll_sketch.serialize_compact)"),
    Column("event_id", "VARCHAR", "late event id"),
    Column("event_time", "TIMESTAMP", "late event time"),
    Column("watermark", "TIMESTAMP", "newest event time seen before the late event"),
    Column("stream_id", "VARCHAR", "stream offset of a late event or dead letter"),
    Column("reason", "VARCHAR", "dead-letter reason"),
    Column("payload", "VARCHAR", "dead-letter payload (cut)"),
    Column("records", "BIGINT", "records read in the batch (valid, duplicate and dead)"),
    Column("events", "BIGINT", "events counted (valid, not duplicate)"),
    Column("duplicates", "BIGINT", "events dropped as repeats of an event_id in the batch"),
    Column("late_events", "BIGINT", "late events in the batch (counted in their windows)"),
    Column("dead_letters", "BIGINT", "malformed records in the batch"),
    Column("min_event_time", "TIMESTAMP", "oldest event time in the batch"),
    Column("max_event_time", "TIMESTAMP", "newest event time in the batch"),
    Column("unique_users", "BIGINT", "distinct visitors in the batch"),
    Column("read_at", "TIMESTAMP", "when the batch's first record was read, UTC"),
    Column("committed_at", "TIMESTAMP", "when the batch was committed, UTC"),
    Column("processing_seconds", "DOUBLE", "read to commit"),
    Column("event_lag_seconds", "DOUBLE", "commit time minus the newest event time"),
    Column("window_seconds", "BIGINT", "--window of the group"),
    Column("lateness_seconds", "BIGINT", "--lateness of the group"),
    Column("offsets", "VARCHAR[]", "stream offsets the batch covers"),
)


@dataclass(frozen=True)
class StreamLayout:
    root: str
    """The lake root (local path)."""

    @property
    def folder(self) -> str:
        return f"{self.root}/{FOLDER}"

    def group(self, group: str) -> str:
        return f"{self.folder}/{GROUP_KEY}={group}"

    @property
    def tmp(self) -> str:
        return f"{self.folder}/_tmp"

    @property
    def locks(self) -> str:
        return f"{self.folder}/_locks"

    @property
    def published(self) -> str:
        return f"{self.folder}/_published"

    @property
    def glob(self) -> str:
        return f"{self.folder}/{GROUP_KEY}=*/*.parquet"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def stream_facts_sql(files: str | list[str]) -> str:
    """The SELECT behind ``stream_facts``: a glob or a list of batch files (empty: no rows)."""
    if isinstance(files, list) and not files:
        cols = ", ".join(f"CAST(NULL AS {c.type}) AS {c.name}" for c in FACT_COLUMNS)
        return f"SELECT {cols}, CAST(NULL AS VARCHAR) AS {GROUP_KEY} WHERE FALSE"
    source = (
        _literal(files) if isinstance(files, str) else "[" + ", ".join(map(_literal, files)) + "]"
    )
    return (
        f"SELECT * FROM read_parquet({source}, hive_partitioning = true, "
        f"hive_types = {{'{GROUP_KEY}': VARCHAR}}, union_by_name = true)"
    )


def require_local(lake: str, command: str) -> None:
    """Refuse an s3:// lake in one line: the stream commits and reads batch files locally."""
    from clickstream import s3

    if s3.is_s3(lake):
        raise StreamError(
            f"stream {command} needs a local lake ({lake}: s3:// lakes are not supported by the "
            "stream commands yet; run them on a local copy or with the lake on local disk)"
        )


def stream_fact_files(store: LakeStore) -> list[str]:
    """Every valid committed batch file of every consumer group (local lakes; none on S3 yet).
    Files that are not batch files as a consumer writes them are left out with a warning."""
    return valid_batch_files(lake_stream_files(store.root))


#: A batch file as the consumer names it: <UTC time>-<consumer>-<counter>.parquet.
_BATCH_NAME = re.compile(
    rf"{GROUP_KEY}=[A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}/"
    r"[0-9]{8}T[0-9]{12}-[A-Za-z0-9][A-Za-z0-9_.-]{0,63}-[0-9]+\.parquet"
)
_REQUIRED = ("kind", "batch_id", "offsets")
_checked: dict[tuple[str, int, int], bool] = {}


def _arrow_matches(sql_type: str, arrow_type: Any) -> bool:
    import pyarrow as pa

    checks = {
        "VARCHAR": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
        "TIMESTAMP": pa.types.is_timestamp,
        "BIGINT": pa.types.is_integer,
        "DOUBLE": pa.types.is_floating,
        "BLOB": lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t),
        "VARCHAR[]": lambda t: (
            (pa.types.is_list(t) or pa.types.is_large_list(t))
            and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type))
        ),
    }
    return bool(checks[sql_type](arrow_type))


def _why_invalid(path: str) -> str | None:
    """None for a batch file as a consumer writes it, else why it is not one."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as err:  # any unreadable footer: pyarrow raises several types
        return f"not a readable Parquet file ({type(err).__name__})"
    types = {c.name: c.type for c in FACT_COLUMNS}
    for name in _REQUIRED:
        if name not in schema.names:
            return f"no '{name}' column"
    for f in schema:
        if f.name not in types:
            return f"unknown column '{f.name[:40]}'"
        if not _arrow_matches(types[f.name], f.type):
            return f"column '{f.name}' is {f.type}, not {types[f.name]}"
    return None


def valid_batch_files(paths: list[str]) -> list[str]:
    """``paths`` without the files that are not batch files (named and shaped as the consumer
    writes them): a stray or garbage file in a group folder would break every reader of the
    stream views. Readers never write, so such a file is skipped with a warning, not moved."""
    kept = []
    for path in paths:
        # A symlink (file or group folder) is never opened, not even to look at its footer: it
        # may lead out of the lake. Left out silently, as the query session leaves it out.
        stream = os.path.realpath(Path(path).parent.parent)
        if os.path.islink(path) or not os.path.realpath(path).startswith(stream + os.sep):
            continue
        if os.path.islink(Path(path).parent):
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in _checked:
            parts = Path(path).parts
            why = None
            if not _BATCH_NAME.fullmatch("/".join(parts[-2:])):
                why = "not named as a batch file"
            else:
                why = _why_invalid(path)
            if why is not None:
                log.warning("ignoring %s: not a stream batch file (%s)", path, why)
            _checked[key] = why is None
        if _checked[key]:
            kept.append(path)
    return kept


def lake_stream_files(lake: str) -> list[str]:
    """Like stream_fact_files, from the lake as typed (no store is opened), unchecked."""
    from clickstream import s3

    if s3.is_s3(lake):
        return []
    root = Path(lake).absolute()
    return sorted(str(p) for p in root.joinpath(FOLDER).glob(f"{GROUP_KEY}=*/*.parquet"))


def stream_facts_glob(lake: str) -> str:
    return StreamLayout(lake.rstrip("/")).glob


def stream_facts_source(lake: str) -> str | list[str] | None:
    """What a live view (catalog file, DuckDB DDL) should read: the glob, so batches committed
    later show up, unless a group folder holds a file that is not a batch file; then the
    checked list of batch files (a glob would break every query). None: no batch file."""
    found = lake_stream_files(lake)
    valid = valid_batch_files(found)
    if not valid:
        return None
    return stream_facts_glob(lake) if len(valid) == len(found) else valid


def stream_view_statements(files: str | list[str]) -> list[str]:
    """``stream_facts`` over ``files`` and every stream_* view, for DuckDB."""
    from clickstream.query.views import STREAM_VIEW_NAMES, view_sql

    return [
        f"CREATE OR REPLACE VIEW stream_facts AS {stream_facts_sql(files)}",
        *(f"CREATE OR REPLACE VIEW {name} AS {view_sql(name)}" for name in STREAM_VIEW_NAMES),
    ]


def connect(lake: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the stream views only (``stream top``, tests)."""
    import duckdb

    from clickstream.lake.store import open_store

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for statement in stream_view_statements(stream_fact_files(open_store(lake))):
        con.execute(statement)
    return con
