"""``stream stats``: consume as a member of a consumer group, commit statistics, then acknowledge.

Order per batch: read -> compute (DuckDB) -> write the batch file -> [group lock: check the
records are still ours, rename the file into the lake] -> acknowledge. Records delivered more than
once (our own unacknowledged ones after a restart, or ones claimed from a dead consumer) are first
checked against the offsets already in the lake, so a batch committed just before a crash is
acknowledged, not counted again.
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickstream.errors import LakeError, StreamError
from clickstream.stream import commit as lake
from clickstream.stream.identity import check_for_consume
from clickstream.stream.records import decode
from clickstream.stream.stats import BatchSettings, BatchSummary, write_batch
from clickstream.stream.tables import StreamLayout, require_local
from clickstream.stream.transports import Records, Transport, open_transport

log = logging.getLogger(__name__)

DEFAULT_GROUP = "stats"
#: Test hook: name a point ("after_commit", "before_commit") to SIGKILL the consumer there.
FAULT_ENV = "CLICKSTREAM_STREAM_FAULT"
#: Test hook: comma-separated points ("before_lock", "before_commit", "after_commit") where the
#: consumer waits for a go-file in PAUSE_DIR_ENV (see _pause).
PAUSE_ENV = "CLICKSTREAM_STREAM_PAUSE"
PAUSE_DIR_ENV = "CLICKSTREAM_STREAM_PAUSE_DIR"


@dataclass
class ConsumerOptions:
    lake: str
    url: str | None = None
    """Broker URL; None for the embedded broker."""
    group: str = DEFAULT_GROUP
    consumer: str = ""
    """This member's name in the group (default: host-pid)."""
    batch_size: int = 1000
    window_seconds: int = 60
    lateness_seconds: int = 3600
    idle_exit: float | None = None
    """Stop after this many seconds without a record (None: run until stopped)."""
    claim_idle_ms: int = 30_000
    """Take over another consumer's records once unacknowledged for this long."""
    block_ms: int = 1000


@dataclass
class ConsumerReport:
    batches: int = 0
    records: int = 0
    events: int = 0
    late_events: int = 0
    dead_letters: int = 0
    skipped_committed: int = 0
    """Redelivered records the lake had already counted (acknowledged only)."""
    seconds: float = 0.0
    summaries: list[BatchSummary] = field(default_factory=list, repr=False)


def _pause(consumer: str, point: str) -> None:
    """Test hook at a commit boundary: announce ``<consumer>.<point>.reached`` in
    PAUSE_DIR_ENV and wait for ``<consumer>.<point>.go`` (so a test can interleave a real second
    consumer exactly there). Off unless PAUSE_ENV names the point."""
    if point not in os.environ.get(PAUSE_ENV, "").split(","):
        return
    folder = Path(os.environ[PAUSE_DIR_ENV])
    (folder / f"{consumer}.{point}.reached").touch()
    go = folder / f"{consumer}.{point}.go"
    deadline = time.monotonic() + 300
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


class Consumer:
    def __init__(self, options: ConsumerOptions, transport: Transport | None = None) -> None:
        from clickstream.lake.store import open_store

        require_local(options.lake, "stats")

        if not open_store(options.lake).exists():
            raise LakeError(f"no lake at {options.lake} (run `clickstream etl` first)")
        self.o = options
        self.o.consumer = lake.check_name(
            "consumer", options.consumer or f"{socket.gethostname()}-{os.getpid()}"
        )
        lake.check_name("group", options.group)
        self.layout = StreamLayout(str(Path(options.lake).absolute()))
        self.transport = transport or open_transport(options.url, options.lake)
        self.state = lake.GroupState(self.layout, options.group)
        self.report = ConsumerReport()
        self._counter = 0
        self._stop = threading.Event()
        self._con: Any = None

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        self.transport.close()

    def stop(self) -> None:
        """Finish the batch in hand, commit it, and return (safe from a signal handler)."""
        self._stop.set()

    def _check_settings(self) -> None:
        self.state.refresh()
        w = self.state.window_seconds
        if w is not None and w != self.o.window_seconds:
            raise StreamError(
                f"consumer group {self.o.group} counts {w}s windows; use --window {w}s "
                "or another --group"
            )

    def run(self, on_batch: Callable[[BatchSummary], None] | None = None) -> ConsumerReport:
        started = time.monotonic()
        self._check_settings()
        check_for_consume(self.transport, self.layout)
        lake.sweep_tmp(self.layout)
        self.transport.ensure_group(self.o.group)
        # Our own unacknowledged records first (a restart after a crash), then new ones.
        while not self._stop.is_set():
            pending = self.transport.pending(self.o.group, self.o.consumer, self.o.batch_size)
            if not pending:
                break
            self._process(pending, redelivered=True, on_batch=on_batch)
        last_record = last_claim = time.monotonic()
        warned = False
        # While DuckDB computes a batch (it releases the GIL), the next one is read from the
        # broker in a helper thread: records read ahead stay pending for this consumer until
        # committed, exactly like the batch in hand, so a crash re-reads them (pending first).
        ahead = _ReadAhead(self.transport, self.o) if _concurrent_reads(self.transport) else None
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now - last_claim >= min(self.o.claim_idle_ms / 1000, 5.0):
                    last_claim = now
                    claimed = self.transport.claim(
                        self.o.group, self.o.consumer, self.o.claim_idle_ms, self.o.batch_size
                    )
                    if claimed:
                        self._process(claimed, redelivered=True, on_batch=on_batch)
                        last_record = time.monotonic()
                        continue
                entries = ahead.take() if ahead is not None else None
                if entries is None:
                    entries = self.transport.read(
                        self.o.group, self.o.consumer, self.o.batch_size, self.o.block_ms
                    )
                if entries:
                    if ahead is not None:
                        ahead.start()
                    self._process(entries, redelivered=False, on_batch=on_batch)
                    last_record = time.monotonic()
                elif (
                    self.o.idle_exit is not None
                    and time.monotonic() - last_record >= self.o.idle_exit
                ):
                    # Records another member read and never acknowledged (it may have been
                    # killed) are not "no new records": wait until --claim-idle lets us take
                    # them over, or their owner acknowledges them.
                    held = self.transport.others_pending(self.o.group, self.o.consumer)
                    if not held:
                        break
                    if not warned:
                        warned = True
                        log.warning(
                            "%d records are pending for other consumers of group %s: waiting "
                            "for them (taken over once unacknowledged for --claim-idle %gs)",
                            held, self.o.group, self.o.claim_idle_ms / 1000,
                        )  # fmt: skip
            # Stopped: what was read ahead is committed too (nothing read is left pending).
            entries = ahead.take() if ahead is not None else None
            if entries:
                self._process(entries, redelivered=False, on_batch=on_batch)
        finally:
            if ahead is not None:
                ahead.close()
        self.report.seconds = time.monotonic() - started
        return self.report

    def _batch_id(self) -> str:
        self._counter += 1
        return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{self.o.consumer}-{self._counter}"

    def _process(
        self,
        entries: Records,
        redelivered: bool,
        on_batch: Callable[[BatchSummary], None] | None,
    ) -> None:
        read_at = datetime.now(UTC)
        already: set[str] = set()
        if redelivered:
            done = lake.committed_offsets(self.layout, self.o.group, entries.ids)
            if done:
                log.info("acknowledging %d redelivered records already in the lake", len(done))
                self.transport.ack(self.o.group, sorted(done))
                self.report.skipped_committed += len(done)
                entries = entries.only(set(entries.ids) - done)
        while entries:
            ids = entries.ids
            batch_id = self._batch_id()
            tmp = lake.tmp_path(self.layout, batch_id)
            with _lake_write(self.layout.root, tmp):
                summary = self._compute(entries, batch_id, read_at, tmp)
            _pause(self.o.consumer, "before_lock")
            with lake.group_lock(self.layout, self.o.group):
                owned = self.transport.owned(self.o.group, self.o.consumer, ids)
                if redelivered:
                    # Every commit of the group happens under this lock, so what the lake holds
                    # now is final: a record that another member committed after we took it
                    # over (it checked ownership before our claim, renamed after) is dropped
                    # here, never counted twice.
                    done = lake.committed_offsets(self.layout, self.o.group, sorted(owned))
                    if done:
                        owned -= done
                        already.update(done)
                if len(owned) == len(ids):
                    _pause(self.o.consumer, "before_commit")
                    _fault("before_commit")
                    with _lake_write(self.layout.root, tmp):
                        final = lake.publish_file(self.layout, self.o.group, tmp)
                    self.state.note(final, summary.max_event_time)
                    break
            # Another consumer claimed (or committed) some of these while we worked.
            tmp.unlink(missing_ok=True)
            log.warning("%d records were claimed by another consumer", len(ids) - len(owned))
            entries = entries.only(owned)
        else:
            self._ack_already(already)
            return
        self._ack_already(already)
        _pause(self.o.consumer, "after_commit")
        _fault("after_commit")
        self.transport.ack(self.o.group, ids)
        r = self.report
        r.batches += 1
        r.records += summary.records
        r.events += summary.events
        r.late_events += summary.late_events
        r.dead_letters += summary.dead_letters
        if on_batch is not None:
            on_batch(summary)

    def _ack_already(self, done: set[str]) -> None:
        if done:
            log.info("acknowledging %d records another member committed", len(done))
            self.transport.ack(self.o.group, sorted(done))
            self.report.skipped_committed += len(done)

    def _compute(
        self, entries: Records, batch_id: str, read_at: datetime, tmp: Path
    ) -> BatchSummary:
        import duckdb
        import pyarrow as pa

        self.state.refresh()
        n = len(entries)
        # pa.array(range(n)) walks Python ints (~2 ms per 1000); a buffer of int64 does not.
        ordinal = pa.Array.from_buffers(
            pa.int64(), n, [None, pa.py_buffer(array.array("q", range(n)))]
        )
        raw = pa.table(
            {
                "ordinal": ordinal,
                "stream_id": pa.array(entries.ids, pa.string()),
                "payload": pa.array(entries.payloads, pa.binary()),
            }
        )
        if self._con is None:  # one connection for the consumer's life: connecting costs ms
            self._con = duckdb.connect()
            self._con.execute("SET TimeZone = 'UTC'")
            # A batch is small: one thread is about twice as fast as two here (no scheduling
            # overhead), and leaves the other core to the broker and the publisher.
            self._con.execute("SET threads = 1")
        con = self._con
        con.register("raw_batch", raw)
        try:
            decode(con, "raw_batch", "decoded")
            settings = BatchSettings(
                batch_id=batch_id,
                consumer=self.o.consumer,
                window_seconds=self.o.window_seconds,
                lateness_seconds=self.o.lateness_seconds,
                watermark=self.state.watermark,
                read_at=read_at,
            )
            return write_batch(con, "decoded", settings, tmp)
        finally:
            con.unregister("raw_batch")


@contextlib.contextmanager
def _lake_write(root: str, tmp: Path) -> Iterator[None]:
    """A failed write of the batch file (disk full, quota, permissions) is one line: nothing was
    committed or acknowledged, so the records stay pending and are read again."""
    import duckdb

    try:
        yield
    except (OSError, duckdb.IOException) as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise LakeError(
            f"could not write the batch into the lake {root} ({first}); nothing was "
            "acknowledged: the records stay pending and are read again on the next run"
        ) from err


def _concurrent_reads(transport: Transport) -> bool:
    return bool(getattr(transport, "concurrent_reads", False))


class _ReadAhead:
    """One non-blocking read of the next batch, running in a helper thread."""

    def __init__(self, transport: Transport, options: ConsumerOptions) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._transport = transport
        self._o = options
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="clickstream-read-ahead")
        self._future: Future[Records] | None = None

    def start(self) -> None:
        o = self._o
        self._future = self._pool.submit(self._transport.read, o.group, o.consumer, o.batch_size, 0)

    def take(self) -> Records | None:
        """The read-ahead batch (None: none was started); its errors are raised here."""
        future, self._future = self._future, None
        return None if future is None else future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def run_consumer(
    options: ConsumerOptions, on_batch: Callable[[BatchSummary], None] | None = None
) -> ConsumerReport:
    consumer = Consumer(options)
    try:
        return consumer.run(on_batch)
    finally:
        consumer.close()
