"""`clickstream sql` streams: printing 6× more output (a 1.2 GB result) takes no more memory.

Peak RSS of the real CLI process, measured by a parent that only waits for it (this test
process's own children — Spark JVMs of other tests — would blur RUSAGE_CHILDREN here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clickstream.generate import generate
from clickstream.pipeline import EtlOptions, run_etl

pytestmark = pytest.mark.slow

_PEAK = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def _peak_kib(lake: Path, rows: int, fmt: str) -> int:
    query = f"SELECT range AS n, repeat('x', 1000) AS pad FROM range({rows})"
    cmd = [sys.executable, "-m", "clickstream", "sql", query, "-l", str(lake), "-f", fmt]
    out = subprocess.run([sys.executable, "-c", _PEAK, *cmd], capture_output=True, text=True,
                         timeout=600, check=True)  # fmt: skip
    return int(out.stdout.strip())


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_output_memory_does_not_grow_with_the_result(tmp_path: Path, fmt: str) -> None:
    src = generate(tmp_path / "a.csv", 200, seed=1)
    lake = tmp_path / "lake"
    run_etl(EtlOptions(input=str(src), lake=str(lake)))
    small = _peak_kib(lake, 200_000, fmt)  # 200 MB of output
    big = _peak_kib(lake, 1_200_000, fmt)  # 1.2 GB: fetched whole, it would need > 1 GB
    assert big < small + 100 * 1024, (small, big)
