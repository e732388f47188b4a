"""Atomic commit of a run's staged files into the lake, with crash recovery.

Protocol (local filesystem):

1. The engine writes everything under ``_staging/<run_id>/``; the lake is untouched.
2. The commit log ``_runs/<run_id>.commit.json`` (every move, every delete, the run report) is
   written to a temp file and renamed into place. That rename is the commit point.
3. Deletes (full refresh) and moves are applied; each is an atomic same-filesystem rename.
4. The run report is written, then the commit log and the staging folder are removed.

A crash before (2) leaves the lake exactly as it was; the staging folder is swept by the next run.
A crash after (2) is rolled forward by ``recover()``, which every writer runs under the lake lock
before it starts. Replaying is idempotent: a move whose source is gone has already happened.
Readers never recover (they do not write): they refuse to read while a commit log is present.

A commit log is read back only through ``lake.metadata`` (validated as untrusted input), and
every path is checked again on disk before it is touched: its real location (symlinks resolved)
must be inside the lake's table folder it names, so no log can move or delete anything else.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clickstream.errors import CorruptMetadataError, LakeBusyError, LakeError
from clickstream.lake import metadata
from clickstream.lake.faults import FAULT_ENV, fault
from clickstream.lake.layout import LakeLayout
from clickstream.lake.report import RunReport

log = logging.getLogger(__name__)

__all__ = ["FAULT_ENV", "commit", "data_files", "lake_lock", "read_bounded", "recover"]


def read_bounded(path: Path) -> bytes:
    """A metadata file's bytes, refusing (without reading it all) one past the size bound."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(metadata.MAX_BYTES + 1)
    except OSError as err:
        raise LakeError(f"{path}: cannot read ({err.strerror})") from err
    return raw


def _open_new(path: Path) -> int:
    """A fresh file at ``path`` for writing; never follows a symlink planted there."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with os.fdopen(_open_new(tmp), "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _no_symlinked_folders(layout: LakeLayout) -> None:
    """A writer never writes through a link: each folder it writes to must be a real one."""
    for folder in (layout.table, layout.rejected, layout.index, layout.runs, layout.staging_root):
        if folder.is_symlink():
            raise LakeError(
                f"{folder} is a symbolic link; a writer never writes through one (replace it "
                "with a real folder)"
            )


@contextlib.contextmanager
def lake_lock(layout: LakeLayout) -> Iterator[None]:
    """One writer at a time per lake (an advisory lock on ``_lock``)."""
    layout.root.mkdir(parents=True, exist_ok=True)
    _no_symlinked_folders(layout)
    try:
        fd = os.open(layout.root / "_lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:  # ELOOP: _lock is a symlink
        raise LakeError(f"{layout.root / '_lock'}: cannot open the lock ({err.strerror})") from err
    with os.fdopen(fd, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise LakeBusyError(f"{layout.root}: another run is writing to this lake") from err
        yield


def data_files(folder: Path) -> list[Path]:
    """The Parquet files that are ``folder``'s own: regular files, not symlinks, not reached
    through a symlinked folder. A planted link is no file of the lake (readers skip it too), so a
    full refresh neither deletes it nor writes a commit log that :func:`_inside` would refuse."""
    if not folder.is_dir():
        return []
    base = os.path.realpath(folder) + os.sep
    own = []
    for dirpath, dirnames, filenames in os.walk(folder):  # never descends into symlinked folders
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            path = Path(dirpath, name)
            if name.endswith(".parquet") and not path.is_symlink() and path.is_file():
                if os.path.realpath(path).startswith(base):
                    own.append(path)
    return sorted(own)


def plan(layout: LakeLayout, run_id: str, report: RunReport, replace_all: bool) -> dict[str, Any]:
    """The commit log: staged files to move in, old files to delete (full refresh), the report."""
    staging = layout.staging(run_id)
    moves = [
        [str(src.relative_to(staging)), str(src.relative_to(staging))]
        for src in data_files(staging / layout.table.name)
        + data_files(staging / layout.rejected.name)
        + data_files(staging / layout.index.name)
    ]
    deletes = []
    if replace_all:
        old = data_files(layout.table) + data_files(layout.rejected) + data_files(layout.index)
        deletes = [str(p.relative_to(layout.root)) for p in old]
    return {"run_id": run_id, "moves": moves, "deletes": deletes, "report": report.to_dict()}


def commit(layout: LakeLayout, run_id: str, report: RunReport, replace_all: bool) -> None:
    """Make the staged run visible in the lake, all of it or (after a crash) none of it."""
    entry = plan(layout, run_id, report, replace_all)
    fault("before_commit")
    write_and_apply(layout, entry)


def write_and_apply(layout: LakeLayout, entry: dict[str, Any]) -> None:
    """The commit point (the log) and what follows, for runs and compactions alike. Every path
    is checked on disk first: one that leads out of the lake (a symlinked partition or index
    folder) stops the run before the log exists, so nothing changed and nothing is left to roll
    forward. Applied exactly as :func:`recover` replays it."""
    log_path = layout.commit_log(entry["run_id"])
    parsed = metadata.local_commit(str(log_path), json.dumps(entry).encode())
    _paths(layout, parsed, committed=False)
    write_json_atomic(log_path, entry)
    _apply(layout, parsed)


def _prune_empty_dirs(folder: Path) -> None:
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()


def _inside(path: Path, folder: Path, name: str, committed: bool = True) -> Path:
    """``path`` with its parent's symlinks resolved, refused unless it stays inside ``folder``."""
    real = Path(os.path.realpath(path.parent)) / path.name
    base = Path(os.path.realpath(folder))
    if base not in real.parents or path.is_symlink():
        if not committed:
            raise LakeError(
                f"{path} leads outside {folder} (a symbolic link in the lake); nothing was "
                "written: put the real folder or file there instead of the link"
            )
        raise CorruptMetadataError(
            name, f"{name}: {path} leads outside {folder}; the commit log was not applied"
        )
    return real


def _paths(
    layout: LakeLayout, entry: metadata.LocalCommit, committed: bool = True
) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """Every path of the log checked (see :func:`_inside`): the deletes, the (from, to) moves."""
    staging = layout.staging(entry.run_id)
    name = str(layout.commit_log(entry.run_id))

    def inside(root: Path, rel: str) -> Path:
        return _inside(root / rel, root / rel.split("/")[0], name, committed)

    deletes = [inside(layout.root, rel) for rel in entry.deletes]
    moves = [(inside(staging, rel), inside(layout.root, rel)) for rel in entry.moves]
    return deletes, moves


def _apply(layout: LakeLayout, entry: metadata.LocalCommit) -> None:
    staging = layout.staging(entry.run_id)
    # Check every path before touching any, so a bad log changes nothing.
    deletes, moves = _paths(layout, entry)
    for path in deletes:
        path.unlink(missing_ok=True)
    for i, (src, dst) in enumerate(moves):
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        if i == 0:
            fault("mid_commit")
    if entry.deletes:
        _prune_empty_dirs(layout.table)
        _prune_empty_dirs(layout.rejected)
        _prune_empty_dirs(layout.index)
    write_json_atomic(layout.report(entry.run_id), entry.report.to_dict())
    layout.commit_log(entry.run_id).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)


def recover(layout: LakeLayout) -> list[str]:
    """Finish committed-but-interrupted runs and sweep abandoned staging. Call under the lock."""
    finished = []
    if layout.runs.exists():
        for log_path in sorted(layout.runs.glob("*" + metadata.COMMIT_SUFFIX)):
            entry = metadata.local_commit(str(log_path), read_bounded(log_path))
            log.warning("completing interrupted commit of run %s", entry.run_id)
            _apply(layout, entry)
            finished.append(entry.run_id)
    if layout.staging_root.exists():
        for stale in layout.staging_root.iterdir():
            log.info("removing abandoned staging folder %s", stale)
            if stale.is_symlink() or not stale.is_dir():
                stale.unlink()  # never follow a link out of the lake
            else:
                shutil.rmtree(stale, ignore_errors=True)
    return finished
