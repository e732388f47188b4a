"""What every benchmark does: a scratch folder, the CLI as a fresh process, generated input."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CLI = [sys.executable, "-m", "clickstream"]


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def generate(out: Path, rows: int, seed: int = 42, bad_fraction: float = 0.01) -> Path:
    subprocess.run(
        [
            *CLI,
            "generate",
            "-n",
            str(rows),
            "-o",
            str(out),
            "--seed",
            str(seed),
            "--bad-fraction",
            str(bad_fraction),
        ],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return out


def timed(cmd: list[str]) -> float:
    """Wall time of a command run as a fresh process (start-up included)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def etl_cmd(src: Path, lake: Path, *extra: str) -> list[str]:
    return [*CLI, "etl", "-q", "-i", str(src), "-l", str(lake), *extra]
