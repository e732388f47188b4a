"""Local scratch folders for runs whose lake is remote (S3 stages its files here first)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def local_scratch(run_id: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=f"clickstream-{run_id}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
