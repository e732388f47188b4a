"""Incremental cost: a small run into a big lake vs the same run into an empty lake.

Builds a lake from --lake-rows generated rows (not timed), then times the ETL of --rows new rows
(another seed, the same months) into a copy of that lake and into an empty lake, alternately,
as fresh processes. The duplicate check reads the touched partitions' event-id index, not their
data, so the ratio should stay near 1. Prints wall and CPU medians and the ratios.
With --returning the new rows are page views of the lake's own visitors: a sample of the lake's
input rows, each 2.5 hours later (the same months), so the sessions table and its rollups have
stored rows of every visitor of the run to read and merge.
Usage: python bench/incremental.py [--lake-rows 5000000] [--rows 100000] [--rounds 3]
       [--lake-input big.csv.gz] [--returning]
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


def returning(lake_input: Path, out: Path, rows: int) -> Path:
    """``rows`` of the lake's input rows (a seeded sample), 2.5 hours later: the same visitors."""
    import duckdb

    source = (
        f"read_csv('{lake_input}', all_varchar = true, header = true, delim = ',', quote = '\"', "
        "strict_mode = false, null_padding = true, ignore_errors = true)"
    )
    duckdb.connect().execute(
        "COPY (SELECT anonymous_user_id, url, "
        "CAST(round(TRY_CAST(time AS DOUBLE) + 9000.25, 6) AS VARCHAR) AS time, browser, os, "
        f"screen_resolution FROM (SELECT * FROM {source} USING SAMPLE reservoir({rows} ROWS) "
        f"REPEATABLE (11)) WHERE TRY_CAST(time AS DOUBLE) IS NOT NULL) TO '{out}' (HEADER)"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake-rows", type=int, default=5_000_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lake-input", default=None, help="reuse a generated file for the lake")
    parser.add_argument("--returning", action="store_true", help="new rows of the lake's visitors")
    args = parser.parse_args()
    with scratch("incr") as work:
        big = Path(args.lake_input) if args.lake_input else None
        if big is None:
            big = generate(work / "big.csv.gz", args.lake_rows)
        if args.returning:
            new = returning(big, work / "new.csv", args.rows)
        else:
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
    who = "returning visitors" if args.returning else "new visitors"
    print(f"lake: {big.name}  new rows: {args.rows:,} ({who})  rounds: {args.rounds} (alternating)")
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
