"""Peak RSS of the ETL on a large input under a --memory-limit.

Usage: python bench/memory.py [--rows 10000000] [--memory-limit 512MB] [--input file.csv.gz]
Without --memory-limit the ETL runs with its defaults. --input reuses a generated file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _common import etl_cmd, generate, scratch

#: Runs the ETL as its child so the peak is the ETL's alone (not the generator's).
LAUNCHER = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--memory-limit", default=None)
    parser.add_argument("--input", default=None)
    args = parser.parse_args()
    with scratch("mem") as work:
        src = Path(args.input) if args.input else generate(work / "clickstream.csv.gz", args.rows)
        limit = ["--memory-limit", args.memory_limit] if args.memory_limit else []
        etl = etl_cmd(src, work / "lake", *limit)
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *etl], check=True, capture_output=True, text=True
        )
        seconds = time.perf_counter() - t0
    print(f"input: {src.name}  memory limit: {args.memory_limit or 'default'}")
    print(f"etl: {seconds:.1f} s, peak RSS: {int(out.stdout.strip()) / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
