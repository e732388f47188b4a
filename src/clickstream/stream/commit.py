"""Committing a consumed batch into the lake: one file, renamed into place.

The batch file is written under ``stream/_tmp/`` and fsynced; under the group's lock (every
commit of the group takes it) the consumer then checks that it still owns the records (XPENDING)
and, for records it took over or got again (claimed, or its own pending after a restart), that no
committed batch already covers them, and renames the file into ``stream/consumer_group=<G>/``
(the commit point; the folder is fsynced after it). A claim can land between another member's
ownership check and its rename; that member then commits the records, and the claimer finds its
file under the lock and only acknowledges them: no offset is ever in two batch files (tested with
a forced interleaving of two real processes, tests/stream/test_commit_race.py). A crash before
the rename leaves a temp file that is swept later and records the broker still holds as
unacknowledged, so they are read again; a crash after it leaves records the lake has counted but
the broker has not forgotten, and those are recognised by their offsets and only acknowledged.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from clickstream.errors import ConfigError, StreamError
from clickstream.stream.tables import StreamLayout, stream_facts_sql, valid_batch_files

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LOCK_TIMEOUT_S = 60.0
#: A temp file this old belongs to no live commit (a commit takes well under a second).
STALE_TMP_S = 600.0


def check_name(what: str, name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid {what} name '{name}' (letters, digits, '_', '.', '-'; at most 64)"
        )
    return name


@contextlib.contextmanager
def flock_within(
    path: Path, timeout_s: float, poll_s: float, timed_out: Callable[[], Exception]
) -> Iterator[None]:
    """Hold an exclusive flock on ``path``; raise ``timed_out()`` if not had within the bound."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise timed_out() from None
                time.sleep(poll_s)
        yield


def group_lock(layout: StreamLayout, group: str) -> contextlib.AbstractContextManager[None]:
    folder = Path(layout.locks)
    return flock_within(
        folder / f"{group}.lock",
        LOCK_TIMEOUT_S,
        0.01,
        lambda: StreamError(
            f"consumer group {group}: its commit lock in {folder} was held for more "
            f"than {LOCK_TIMEOUT_S:.0f}s"
        ),
    )


def tmp_path(layout: StreamLayout, batch_id: str) -> Path:
    folder = Path(layout.tmp)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{batch_id}.parquet"


def sweep_tmp(layout: StreamLayout) -> None:
    folder = Path(layout.tmp)
    if not folder.exists():
        return
    now = time.time()
    for path in folder.iterdir():
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > STALE_TMP_S:
                path.unlink()


def publish_file(layout: StreamLayout, group: str, tmp: Path) -> Path:
    """The commit point: fsync the batch file and rename it into the group's folder."""
    folder = Path(layout.group(group))
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    final = folder / tmp.name
    os.replace(tmp, final)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


@dataclass
class GroupState:
    """What the committed batches of a group say: the watermark and the group's settings."""

    layout: StreamLayout
    group: str
    watermark: datetime | None = None
    window_seconds: int | None = None
    lateness_seconds: int | None = None
    _seen: set[str] = field(default_factory=set)

    def refresh(self) -> None:
        """Fold in batch files committed since the last call (by any consumer of the group)."""
        import duckdb

        folder = Path(self.layout.group(self.group))
        if not folder.exists():
            return
        new = [f for f in group_files(self.layout, self.group) if f not in self._seen]
        if not new:
            return
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            files = ", ".join("'" + f.replace("'", "''") + "'" for f in new)
            row = con.execute(
                f"""SELECT max(max_event_time), min(window_seconds), max(window_seconds),
                           min(lateness_seconds), max(lateness_seconds)
                    FROM read_parquet([{files}], union_by_name = true) WHERE kind = 'batch'"""
            ).fetchone()
        except duckdb.Error as err:
            raise StreamError(f"unreadable stream batch in {folder}: {err}") from err
        finally:
            con.close()
        assert row is not None
        newest, w_lo, w_hi, l_lo, l_hi = row
        if w_lo is not None:
            if w_lo != w_hi or (self.window_seconds not in (None, w_lo)):
                raise StreamError(f"consumer group {self.group}: batches disagree on --window")
            self.window_seconds, self.lateness_seconds = int(w_lo), int(l_hi)
        if newest is not None and (self.watermark is None or newest > self.watermark):
            self.watermark = newest
        self._seen.update(new)

    def note(self, path: Path, newest: datetime | None) -> None:
        self._seen.add(str(path))
        if newest is not None and (self.watermark is None or newest > self.watermark):
            self.watermark = newest


def group_files(layout: StreamLayout, group: str) -> list[str]:
    """The group's committed batch files (a stray or garbage file is skipped with a warning)."""
    folder = Path(layout.group(group))
    return valid_batch_files(sorted(str(p) for p in folder.glob("*.parquet")))


def committed_offsets(layout: StreamLayout, group: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` some committed batch of the group already covers."""
    files = group_files(layout, group) if ids else []
    if not files:
        return set()
    import duckdb
    import pyarrow as pa

    con = duckdb.connect()
    try:
        con.register("candidates", pa.table({"id": pa.array(list(ids), pa.string())}))
        rows = con.execute(
            f"""SELECT DISTINCT o FROM (
                  SELECT unnest(offsets) AS o FROM ({stream_facts_sql(files)}) WHERE kind = 'batch')
                SEMI JOIN candidates ON o = id"""
        ).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def committed_positions(layout: StreamLayout, group: str) -> dict[str, str]:
    """Shard id -> last committed sequence number (offsets ``<shard>:<sequence>``, Kinesis)."""
    files = group_files(layout, group)
    if not files:
        return {}
    import duckdb

    con = duckdb.connect()
    try:
        rows = con.execute(
            f"""SELECT split_part(o, ':', 1) AS shard,
                       arg_max(split_part(o, ':', 2), lpad(split_part(o, ':', 2), 80, '0'))
                FROM (SELECT unnest(offsets) AS o FROM ({stream_facts_sql(files)})
                      WHERE kind = 'batch')
                WHERE contains(o, ':') GROUP BY shard"""
        ).fetchall()
    finally:
        con.close()
    return {shard: seq for shard, seq in rows}
