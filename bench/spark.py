"""Spark engine (local mode) next to the DuckDB engine on the same input, alternately.

The input is split into several files, as a real clickstream drop is (Spark reads one file per
task). Usage: python bench/spark.py [--rows 1000000] [--files 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics

from _common import etl_cmd, generate, scratch, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with scratch("spark") as work:
        src = work / "raw"
        for i in range(args.files):
            generate(src / f"part{i}.csv", args.rows // args.files, seed=i)
        times: dict[str, list[float]] = {"duckdb": [], "spark": []}
        for r in range(args.rounds):
            for engine in times:
                lake = work / f"lake-{engine}-{r}"
                times[engine].append(timed(etl_cmd(src, lake, "--engine", engine)))
                shutil.rmtree(lake)
    duck, spark = (statistics.median(times[e]) for e in ("duckdb", "spark"))
    print(f"rows: {args.rows:,} in {args.files} files, rounds: {args.rounds} (alternating)")
    print(f"duckdb engine:              {duck:7.1f} s")
    print(f"spark engine (local[*]):    {spark:7.1f} s  (includes JVM start-up)")
    print(f"ratio spark / duckdb: {spark / duck:.1f}x")


if __name__ == "__main__":
    main()
