"""Peak RSS of the ETL on a large input under the default --memory-limit.

Usage: python bench/memory.py [--rows 10000000] [--memory-limit 2GB]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--memory-limit", default="2GB")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    try:
        src = work / "clickstream.csv.gz"
        subprocess.run([sys.executable, "-m", "clickstream", "generate", "-n", str(args.rows),
                        "-o", str(src), "--bad-fraction", "0.01"], check=True)
        # Measured in a fresh launcher so the generator's own peak does not count.
        etl = [sys.executable, "-m", "clickstream", "etl", "-q", "-i", str(src),
               "-l", str(work / "lake"), "--memory-limit", args.memory_limit]
        launcher = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
                    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", launcher, *etl], check=True,
                             capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        peak_kib = int(out.stdout.strip())
        print(f"rows: {args.rows:,}  memory limit: {args.memory_limit}")
        print(f"etl: {seconds:.1f} s, peak RSS of the largest child: {peak_kib / 1024:,.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
