"""Incremental cost: a small run into a big lake vs the same run into an empty lake.

Builds a lake from --lake-rows generated rows (not timed), then times the ETL of --rows new rows
(another seed, the same months) into a copy of that lake and into an empty lake, alternately,
as fresh processes. The duplicate check reads the touched partitions' event-id index, not their
data, so the ratio should stay near 1. Prints wall and CPU medians and the ratios.
Usage: python bench/incremental.py [--lake-rows 5000000] [--rows 100000] [--rounds 3]
       [--lake-input big.csv.gz]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from _common import etl_cmd, generate, scratch


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake-rows", type=int, default=5_000_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lake-input", default=None, help="reuse a generated file for the lake")
    args = parser.parse_args()
    with scratch("incr") as work:
        big = Path(args.lake_input) if args.lake_input else None
        if big is None:
            big = generate(work / "big.csv.gz", args.lake_rows)
        new = generate(work / "new.csv", args.rows, seed=4242)
        base = work / "base"
        subprocess.run(etl_cmd(big, base), check=True)
        full, empty = [], []
        for i in range(args.rounds):
            lake = work / f"full{i}"
            shutil.copytree(base, lake)
            full.append(run(etl_cmd(new, lake)))
            empty.append(run(etl_cmd(new, work / f"empty{i}")))
            shutil.rmtree(lake)
            shutil.rmtree(work / f"empty{i}")
    wall_full, wall_empty = (statistics.median(w for w, _ in r) for r in (full, empty))
    cpu_full, cpu_empty = (statistics.median(c for _, c in r) for r in (full, empty))
    print(f"lake: {big.name}  new rows: {args.rows:,}  rounds: {args.rounds} (alternating)")
    print(f"into the full lake:  {wall_full:6.2f} s wall  {cpu_full:6.2f} s CPU")
    print(f"into an empty lake:  {wall_empty:6.2f} s wall  {cpu_empty:6.2f} s CPU")
    print(
        f"ratio full / empty: {wall_full / wall_empty:.2f}x wall, {cpu_full / cpu_empty:.2f}x CPU"
        "  (each round: "
        + ", ".join(f"{f[0] / e[0]:.2f}x" for f, e in zip(full, empty, strict=True))
        + ")"
    )


if __name__ == "__main__":
    main()
