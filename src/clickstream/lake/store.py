"""A lake on the local filesystem or on S3, behind the few operations a run needs."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from clickstream.lake import commit as local_commit
from clickstream.lake.layout import LakeLayout
from clickstream.lake.report import RunReport, load_reports


class LakeStore(Protocol):
    root: str

    @property
    def table_uri(self) -> str: ...

    @property
    def rejected_uri(self) -> str: ...

    def lock(self) -> contextlib.AbstractContextManager[None]: ...

    def recover(self) -> None:
        """Finish or undo interrupted commits; sweep abandoned staging."""

    def reports(self) -> list[RunReport]: ...

    def new_staging(self, run_id: str) -> Path:
        """A local folder for the run's files (on the lake's filesystem when it is local)."""

    def discard_staging(self, run_id: str, staging: Path) -> None: ...

    def commit(self, run_id: str, staging: Path, report: RunReport, replace_all: bool) -> None: ...

    def partition_files(self, year: int, month: int) -> list[str]: ...

    def rejected_files(self) -> list[str]: ...


class LocalLake:
    def __init__(self, root: str | Path) -> None:
        self.layout = LakeLayout(Path(root).absolute())
        self.root = str(self.layout.root)

    @property
    def table_uri(self) -> str:
        return str(self.layout.table)

    @property
    def rejected_uri(self) -> str:
        return str(self.layout.rejected)

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return local_commit.lake_lock(self.layout)

    def recover(self) -> None:
        local_commit.recover(self.layout)

    def reports(self) -> list[RunReport]:
        return load_reports(self.layout.runs)

    def new_staging(self, run_id: str) -> Path:
        staging = self.layout.staging(run_id)
        staging.mkdir(parents=True)
        return staging

    def discard_staging(self, run_id: str, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def commit(self, run_id: str, staging: Path, report: RunReport, replace_all: bool) -> None:
        local_commit.commit(self.layout, run_id, report, replace_all)

    def partition_files(self, year: int, month: int) -> list[str]:
        folder = self.layout.table / self.layout.partition(year, month)
        return [str(p) for p in sorted(folder.glob("*.parquet"))]

    def rejected_files(self) -> list[str]:
        return [str(p) for p in sorted(self.layout.rejected.glob("*.parquet"))]


def open_store(root: str | Path) -> LakeStore:
    """The lake at a local path or an s3:// URI."""
    from clickstream import s3

    if isinstance(root, str) and s3.is_s3(root):
        from clickstream.lake.s3lake import S3Lake

        return S3Lake(root)
    return LocalLake(root)


@contextlib.contextmanager
def local_scratch(run_id: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=f"clickstream-{run_id}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["LakeStore", "LocalLake", "open_store"]
