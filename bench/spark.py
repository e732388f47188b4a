"""Spark engine (local mode) on one large CSV file, next to DuckDB's plain copy of that file.

Issue #11, target 6: one 1M-row file at ``local[2]`` within 10x of DuckDB's plain copy (read the
CSV, write it as zstd Parquet: the I/O floor of any engine). The file is one file on purpose: a
large file must be split across tasks. The DuckDB ETL on the same file is printed for scale.
Each measurement is the whole command as a fresh process, alternating, median of ``--rounds``.

Usage: python bench/spark.py [--rows 1000000] [--rounds 2] [--master local[2]]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys

from _common import etl_cmd, generate, scratch, timed


def plain_copy_cmd(src: str, out: str) -> list[str]:
    sql = (
        f"COPY (SELECT * FROM read_csv('{src}', header = true, all_varchar = true)) "
        f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
    )
    return [sys.executable, "-c", f"import duckdb; duckdb.sql({sql!r})"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    with scratch("spark") as work:
        src = generate(work / "raw" / "big.csv", args.rows, seed=1)
        size = src.stat().st_size
        times: dict[str, list[float]] = {"copy": [], "duckdb": [], "spark": []}
        for r in range(args.rounds):
            times["copy"].append(timed(plain_copy_cmd(str(src), str(work / f"copy{r}.parquet"))))
            for engine in ("duckdb", "spark"):
                lake = work / f"lake-{engine}-{r}"
                extra = ["--master", args.master] if engine == "spark" else []
                times[engine].append(timed(etl_cmd(src, lake, "--engine", engine, *extra)))
                shutil.rmtree(lake)
    copy, duck, spark = (statistics.median(times[k]) for k in ("copy", "duckdb", "spark"))
    print(f"one file: {args.rows:,} rows, {size / 1e6:.0f} MB; rounds: {args.rounds} (alternating)")
    print(f"duckdb plain copy (CSV -> Parquet): {copy:7.2f} s")
    print(f"duckdb engine (etl):                {duck:7.2f} s")
    print(f"spark engine (etl, {args.master}):    {spark:7.2f} s  (includes JVM start-up)")
    print(f"ratio spark / plain copy: {spark / copy:.1f}x (target <= 10x)")
    print(f"ratio spark / duckdb etl: {spark / duck:.1f}x")


if __name__ == "__main__":
    main()
