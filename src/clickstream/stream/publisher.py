"""``stream publish``: put every lake event not yet published onto the stream, run by run.

The lake remembers what it published in ``stream/_published/<target>.json``: for each run, its
sequence number on the stream (runs go out in commit order), its event count and how many of its
events are out. Each run's events go out in event-time order as ids ``<seq>-0, <seq>-1, ...``; the
checkpoint advances after each chunk lands. After a crash the publisher resumes at the larger of
the checkpoint and what the stream itself holds (its last id), and the broker refuses ids it
already has, so at most the unfinished chunk is sent again and nothing reaches the stream twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clickstream.errors import LakeError, StreamError
from clickstream.lake.files import table_match, writer_files
from clickstream.stream.identity import claim_for_publish
from clickstream.stream.prefetch import ReadAhead
from clickstream.stream.records import encode_sql
from clickstream.stream.tables import StreamLayout, require_local
from clickstream.stream.transports import (
    PAST,
    Transport,
    concatenated,
    open_transport,
    resp_bulk_sql,
)

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
CHUNK = 10_000
MEMORY_LIMIT = "512MB"
#: Test hook: SIGKILL the publisher after this many chunks.
FAULT_ENV = "CLICKSTREAM_PUBLISH_KILL_AFTER_CHUNKS"


@dataclass
class RunProgress:
    run_id: str
    seq: int
    events: int
    published: int = 0


@dataclass
class Checkpoint:
    target: str
    runs: list[RunProgress] = field(default_factory=list)
    stream: str | None = None
    """The stream's identity when the broker has one (Kinesis: its creation time)."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": CHECKPOINT_VERSION,
            "target": self.target,
            "runs": [vars(r) for r in self.runs],
        }
        if self.stream is not None:
            data["stream"] = self.stream
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Checkpoint:
        """Validate everything: a wrong checkpoint would skip or repeat events."""

        def bad(why: str) -> StreamError:
            return StreamError(f"{where}: invalid publish checkpoint ({why})")

        if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
            raise bad(f"expected an object with version {CHECKPOINT_VERSION}")
        if not isinstance(data.get("target"), str) or not isinstance(data.get("runs"), list):
            raise bad("'target' must be a string and 'runs' a list")
        if not isinstance(data.get("stream", ""), str) or set(data) - {
            "version",
            "target",
            "runs",
            "stream",
        }:
            raise bad("unexpected keys, or 'stream' is not a string")
        runs, seen = [], set()
        for i, r in enumerate(data["runs"]):
            if not isinstance(r, dict) or set(r) != {"run_id", "seq", "events", "published"}:
                raise bad(f"run #{i} must have exactly run_id, seq, events, published")
            ints = [r["seq"], r["events"], r["published"]]
            if not isinstance(r["run_id"], str) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in ints
            ):
                raise bad(f"run #{i} has wrong types")
            if r["seq"] != i + 1 or not 0 <= r["published"] <= r["events"] or r["run_id"] in seen:
                raise bad(f"run #{i} ({r['run_id']}) is out of sequence or over-counted")
            seen.add(r["run_id"])
            runs.append(RunProgress(r["run_id"], r["seq"], r["events"], r["published"]))
        return cls(data["target"], runs, data.get("stream"))


def checkpoint_path(layout: StreamLayout, target: str) -> Path:
    digest = hashlib.sha256(target.encode()).hexdigest()[:16]
    return Path(layout.published) / f"{digest}.json"


def load_checkpoint(path: Path, target: str) -> Checkpoint:
    if not path.exists():
        return Checkpoint(target)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise StreamError(f"{path}: unreadable publish checkpoint ({err})") from err
    return Checkpoint.from_dict(data, str(path))


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(checkpoint.to_dict(), fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class PublishReport:
    runs: int = 0
    events: int = 0
    seconds: float = 0.0


def _run_files(store: Any, run_id: str) -> list[str]:
    """The run's own data files, by the lake's one rule (``lake.files``): named
    ``<run_id>_<n>.parquet`` in a writer's ``year=Y/month=M`` folder."""
    own = []
    for path in writer_files(store.root, store.table_files()):
        match = table_match(store.root, path)
        if match is not None and match["run"] == run_id:
            own.append(path)
    return sorted(own)


@dataclass
class RunSource:
    """Where a run's events are in the lake now: files, and a filter when they are shared."""

    files: list[str]
    inputs: list[str] | None = None
    """None: the files are the run's own. Else the files are shared (``compact`` rewrote the
    run's files together with other runs'): the run's rows are those read from these inputs."""

    def select(self, files: list[str]) -> str:
        listed = ", ".join(_literal(f) for f in files)
        source = f"SELECT * FROM read_parquet([{listed}])"
        if self.inputs is None:
            return source
        return f"{source} WHERE source_file IN ({', '.join(map(_literal, self.inputs))})"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def run_source(store: Any, reports: list[Any], run_id: str) -> RunSource | None:
    """The run's events in the lake however its files are named now; None when a later full
    refresh replaced them (nothing of the run is left to publish).

    A run's files are named after it until ``clickstream compact`` rewrites each partition into
    one file named after the compaction: the run's rows are then the rows of its partitions that
    came from its input files (``source_file``; an input is ingested by one run only)."""
    own = _run_files(store, run_id)
    if own:
        return RunSource(own)
    order = [r.run_id for r in reports]
    report = reports[order.index(run_id)] if run_id in order else None
    if report is None or any(r.full_refresh for r in reports[order.index(run_id) + 1 :]):
        return None
    files = sorted(
        writer_files(
            store.root,
            [f for p in report.partitions for f in store.partition_files(p.year, p.month)],
            set(order),
        )
    )
    return RunSource(files, sorted({f.path for f in report.input_files}))


def _partition(path: str) -> tuple[int, int]:
    parts = dict(p.split("=", 1) for p in Path(path).parts if p.startswith(("year=", "month=")))
    return int(parts["year"]), int(parts["month"])


def _in_event_time_order(
    con: Any, run: RunSource, start: int, framed: bool = False
) -> Iterator[Any]:
    """The run's records from position ``start`` on, as Arrow batches of at most CHUNK.

    Partitions are months, so sorting each month alone (in month order) gives the run's
    event-time order while holding one month, not the run, in memory."""
    months: dict[tuple[int, int], list[str]] = {}
    for f in run.files:
        months.setdefault(_partition(f), []).append(f)
    skip = start
    for month in sorted(months):
        source = run.select(months[month])
        rows = con.execute(f"SELECT count(*) FROM ({source})").fetchone()[0]
        if skip >= rows:
            skip -= rows
            continue
        frame = f", {resp_bulk_sql('payload')} AS frame" if framed else ""
        yield from con.execute(
            f"SELECT payload, key, event_id{frame} FROM ({encode_sql(source)}) OFFSET {skip}"
        ).to_arrow_reader(CHUNK)
        skip = 0


def _count(con: Any, run: RunSource) -> int:
    if not run.files:
        return 0
    row = con.execute(f"SELECT count(*) FROM ({run.select(run.files)})").fetchone()
    return int(row[0]) if row else 0


class Publisher:
    def __init__(self, lake: str, url: str | None, transport: Transport | None = None) -> None:
        from clickstream.lake.store import open_store

        require_local(lake, "publish")
        self.store = open_store(lake)
        if not self.store.exists():
            raise LakeError(f"no lake at {lake} (run `clickstream etl` first)")
        self.lake = self.store.root
        self.transport = transport or open_transport(url, lake)
        self.layout = StreamLayout(self.lake)
        self.path = checkpoint_path(self.layout, self.transport.endpoint)
        self._chunks = 0
        self._saved: set[str] = set()
        self._reports: list[Any] = []
        self._stop: Callable[[], bool] = lambda: False

    def publish_new(
        self,
        progress: Callable[[str, int], None] | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> PublishReport:
        """Publish every committed run not (fully) published yet; returns what went out."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StreamError(
                    f"another publisher is publishing {self.lake} to {self.transport.endpoint}"
                ) from None
            self._stop = stop
            return self._publish_new(progress)

    def _publish_new(self, progress: Callable[[str, int], None] | None) -> PublishReport:
        started = time.monotonic()
        report = PublishReport()
        checkpoint = load_checkpoint(self.path, self.transport.endpoint)
        if claim_for_publish(self.transport, self.layout, checkpoint):
            log.warning(
                "%s no longer holds what this lake published to it (deleted or created anew): "
                "publishing every run again",
                self.transport.endpoint,
            )
            for gone in checkpoint.runs:
                gone.published = 0
            save_checkpoint(self.path, checkpoint)
        known = {r.run_id: r for r in checkpoint.runs}
        self._saved = set(known)  # runs a crashed publisher may have been sending
        self._reports = self.store.reports()
        for run in self._reports:
            if run.run_id not in known and run.rows_written > 0:
                entry = RunProgress(run.run_id, len(checkpoint.runs) + 1, run.rows_written)
                checkpoint.runs.append(entry)
                known[run.run_id] = entry
        for entry in checkpoint.runs:
            if entry.published >= entry.events:
                continue
            if self._stop():
                break
            sent = self._publish_run(entry, checkpoint, progress)
            report.runs += 1
            report.events += sent
        report.seconds = time.monotonic() - started
        return report

    def _publish_run(
        self,
        entry: RunProgress,
        checkpoint: Checkpoint,
        progress: Callable[[str, int], None] | None,
    ) -> int:
        import duckdb

        on_stream = self.transport.published(entry.seq)
        start = max(entry.published, min(on_stream or 0, entry.events))
        if on_stream == PAST:
            start = entry.events
        run = run_source(self.store, self._reports, entry.run_id)
        if run is None and start < entry.events:
            log.warning("run %s has no data files left (a full refresh replaced it)", entry.run_id)
            start = entry.events
        sent = 0
        if run is not None and start < entry.events:
            reader: ReadAhead[Any] | None = None
            spill = tempfile.mkdtemp(prefix="clickstream-publish-")
            con = duckdb.connect()
            try:
                con.execute("SET TimeZone = 'UTC'")
                # The run is sorted by event time before it goes out: bound it, spill the rest.
                con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
                con.execute(f"SET temp_directory = '{spill}'")
                # Redis: the records go out framed by DuckDB, no Python object per record.
                packed = getattr(self.transport, "publish_frames", None)
                # Counted before anything goes out: a run is never marked published with fewer
                # events sent than it committed (files lost, or rewritten beyond recognition).
                found = _count(con, run)
                if found != entry.events:
                    raise StreamError(
                        f"run {entry.run_id}: the lake holds {found:,} of its {entry.events:,} "
                        "events (its files were rewritten or removed); nothing of it was published"
                    )
                reader = ReadAhead(_in_event_time_order(con, run, start, packed is not None))
                position = start
                since = self._checkpoint_time() if entry.run_id in self._saved else None
                # Kinesis: saved before each chunk, its time bounds the look-up after a crash.
                # Redis refuses repeated ids, so once per run (the run's seq) is enough there.
                before_each = hasattr(self.transport, "already")
                save_checkpoint(self.path, checkpoint)
                for batch in reader:
                    if before_each:
                        save_checkpoint(self.path, checkpoint)
                    if since is not None:  # the first chunk after a crash, on a broker that
                        payloads, keys = self._unsent(batch, since)  # cannot refuse repeats
                        since = None
                        self.transport.publish(entry.seq, position, payloads, keys)
                        sent += len(payloads)
                    elif packed is not None:
                        frames = concatenated(batch.column(3))
                        packed(entry.seq, position, batch.num_rows, frames)
                        sent += batch.num_rows
                    else:
                        payloads = batch.column(0).to_pylist()
                        keys = batch.column(1).to_pylist()
                        self.transport.publish(entry.seq, position, payloads, keys)
                        sent += len(payloads)
                    position += batch.num_rows
                    # A kill here (the chunk is on the stream, the checkpoint is behind) is the
                    # hard case: the stream's own last id must carry the resume point.
                    self._maybe_fault()
                    entry.published = position
                    save_checkpoint(self.path, checkpoint)
                    if progress is not None:
                        progress(entry.run_id, sent)
                    if self._stop():  # a stop signal: the checkpoint holds what went out
                        return sent
            finally:
                if reader is not None:
                    reader.close()  # before the connection it reads from is closed
                con.close()
                shutil.rmtree(spill, ignore_errors=True)
            if position != entry.events:
                raise StreamError(
                    f"run {entry.run_id}: the lake holds {position} events but its report says "
                    f"{entry.events}"
                )
        entry.published = entry.events
        save_checkpoint(self.path, checkpoint)
        return sent

    def _checkpoint_time(self) -> datetime | None:
        """For a broker that cannot refuse a repeat (Kinesis): when the last chunk may have
        started going out (None: no look-up needed)."""
        if not hasattr(self.transport, "already") or not self.path.exists():
            return None
        return datetime.fromtimestamp(self.path.stat().st_mtime, UTC) - timedelta(seconds=60)

    def _unsent(self, batch: Any, since: datetime) -> tuple[list[bytes], list[str]]:
        event_ids = batch.column(2).to_pylist()
        there = self.transport.already(since, set(event_ids))  # type: ignore[attr-defined]
        if there:
            log.warning("%d events of the unfinished chunk are already on the stream", len(there))
        rows = zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), event_ids, strict=True)
        kept = [(p, k) for p, k, e in rows if e not in there]
        return [p for p, _ in kept], [k for _, k in kept]

    def _maybe_fault(self) -> None:
        self._chunks += 1
        limit = os.environ.get(FAULT_ENV)
        if limit and self._chunks >= int(limit):
            import signal

            os.kill(os.getpid(), signal.SIGKILL)

    def close(self) -> None:
        self.transport.close()


def publish(
    lake: str,
    url: str | None = None,
    follow: bool = False,
    poll_seconds: float = 2.0,
    stop: Callable[[], bool] = lambda: False,
    progress: Callable[[str, int], None] | None = None,
) -> PublishReport:
    """Publish what is new; with ``follow``, keep publishing each new run until ``stop()``."""
    publisher = Publisher(lake, url)
    total = PublishReport()
    try:
        while True:
            report = publisher.publish_new(progress, stop)
            total.runs += report.runs
            total.events += report.events
            total.seconds += report.seconds
            if not follow or stop():
                return total
            deadline = time.monotonic() + poll_seconds
            while time.monotonic() < deadline and not stop():
                time.sleep(0.1)
            if stop():
                return total
    finally:
        publisher.close()
