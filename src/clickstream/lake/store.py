"""A lake on the local filesystem or on S3, behind the few operations a run or a reader needs.

A location stays the user's string until :func:`open_store` parses it: ``Path("s3://b/k")``
would silently become ``s3:/b/k``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Protocol

from clickstream.errors import LakeError
from clickstream.lake import commit as local_commit
from clickstream.lake import metadata
from clickstream.lake.layout import REJECTED_TABLE, TABLE, LakeLayout
from clickstream.lake.report import RunReport


class LakeStore(Protocol):
    root: str

    @property
    def table_uri(self) -> str: ...

    @property
    def rejected_uri(self) -> str: ...

    def exists(self) -> bool:
        """Whether the lake has ever been written (its table folder exists)."""

    def lock(self) -> contextlib.AbstractContextManager[None]: ...

    def recover(self) -> None:
        """Finish or undo interrupted commits; sweep abandoned staging. Writers only."""

    def pending_commits(self) -> list[str]:
        """Commit logs present now (a run committing, or one that was interrupted)."""

    def reports(self) -> list[RunReport]:
        """Validated run reports, oldest first (raises CorruptMetadataError on a bad one)."""

    def new_staging(self, run_id: str) -> Path:
        """A local folder for the run's files (on the lake's filesystem when it is local)."""

    def discard_staging(self, run_id: str, staging: Path) -> None: ...

    def commit(self, run_id: str, staging: Path, report: RunReport, replace_all: bool) -> None: ...

    def partition_files(self, year: int, month: int) -> list[str]: ...

    def index_files(self, year: int, month: int) -> list[str]:
        """The partition's event-id index files (see ``lake.index``)."""

    def rejected_files(self) -> list[str]: ...

    def table_files(self) -> list[str]:
        """Every data file of the clickstream table, as paths or URIs a reader may open."""


def _real_files(folder: Path) -> list[str]:
    """``*.parquet`` files under ``folder`` whose real location is inside it (no symlink out):
    the same files a commit moves or deletes (:func:`lake.commit.data_files`)."""
    return [str(p) for p in local_commit.data_files(folder)]


class LocalLake:
    def __init__(self, root: str) -> None:
        self.layout = LakeLayout(Path(root).absolute())
        self.root = str(self.layout.root)

    @property
    def table_uri(self) -> str:
        return str(self.layout.table)

    @property
    def rejected_uri(self) -> str:
        return str(self.layout.rejected)

    def exists(self) -> bool:
        return self.layout.table.is_dir() or self.layout.runs.is_dir()

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return local_commit.lake_lock(self.layout)

    def recover(self) -> None:
        local_commit.recover(self.layout)

    def pending_commits(self) -> list[str]:
        runs = self.layout.runs
        if not runs.is_dir():
            return []
        return sorted(str(p) for p in runs.glob("*" + metadata.COMMIT_SUFFIX))

    def reports(self) -> list[RunReport]:
        runs = self.layout.runs
        reports = []
        if runs.is_dir():
            for path in sorted(runs.glob("*" + metadata.REPORT_SUFFIX)):
                if not path.name.endswith(metadata.COMMIT_SUFFIX) and not path.is_symlink():
                    raw = local_commit.read_bounded(path)
                    reports.append(metadata.run_report(str(path), raw))
        reports.sort(key=lambda r: (r.finished_at, r.run_id))
        names = {Path(p).name for p in self.table_files() + self.rejected_files()}
        metadata.check_reports_have_files(reports, names, str(runs))
        return reports

    def new_staging(self, run_id: str) -> Path:
        staging = self.layout.staging(run_id)
        staging.mkdir(parents=True)
        return staging

    def discard_staging(self, run_id: str, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def commit(self, run_id: str, staging: Path, report: RunReport, replace_all: bool) -> None:
        local_commit.commit(self.layout, run_id, report, replace_all)

    def partition_files(self, year: int, month: int) -> list[str]:
        return _real_files(self.layout.table / self.layout.partition(year, month))

    def index_files(self, year: int, month: int) -> list[str]:
        folder = self.layout.index / self.layout.partition(year, month)
        # The partition's own files only: compaction deletes what it lists.
        return [f for f in _real_files(folder) if os.path.dirname(f) == str(folder)]

    def rejected_files(self) -> list[str]:
        return _real_files(self.layout.rejected)

    def table_files(self) -> list[str]:
        return _real_files(self.layout.table)


def open_store(root: str | os.PathLike[str]) -> LakeStore:
    """The lake at a local path or an s3:// URI, as the user typed it."""
    from clickstream import s3

    location = os.fspath(root)
    if not isinstance(location, str) or not location.strip():
        raise LakeError("no lake location given")
    if s3.is_s3(location):
        from clickstream.lake.s3lake import S3Lake

        return S3Lake(location)
    if "://" in location:
        raise LakeError(f"{location}: a lake is a local folder or an s3:// URI")
    return LocalLake(location)


__all__ = ["REJECTED_TABLE", "TABLE", "LakeStore", "LocalLake", "open_store"]
