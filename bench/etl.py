"""ETL wall time vs DuckDB's plain CSV -> partitioned Parquet copy of the same file.

Both run as fresh processes (start-up counts), alternately, several rounds; prints medians and
the ratio. Usage: python bench/etl.py [--rows 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys

from _common import etl_cmd, generate, scratch, timed

PLAIN_COPY = """
import duckdb, sys
src, out = sys.argv[1], sys.argv[2]
duckdb.sql(f'''COPY (SELECT *, year(t) AS year, month(t) AS month FROM (
    SELECT *, to_timestamp(TRY_CAST("time" AS DOUBLE)) AS t
    FROM read_csv('{src}', header = true, all_varchar = true, ignore_errors = true)))
  TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year, month))''')
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with scratch("etl") as work:
        src = generate(work / "clickstream.csv", args.rows)
        etl_times, copy_times = [], []
        for i in range(args.rounds):
            lake, out = work / f"lake{i}", work / f"copy{i}"
            etl_times.append(timed(etl_cmd(src, lake)))
            copy_times.append(timed([sys.executable, "-c", PLAIN_COPY, str(src), str(out)]))
            shutil.rmtree(lake)
            shutil.rmtree(out)
    etl, copy = statistics.median(etl_times), statistics.median(copy_times)
    print(f"rows: {args.rows:,}  rounds: {args.rounds} (alternating)")
    print(f"clickstream etl (full contract): {etl:6.2f} s   {args.rows / etl:,.0f} rows/s")
    print(f"duckdb plain CSV->Parquet copy:  {copy:6.2f} s   {args.rows / copy:,.0f} rows/s")
    print(f"ratio etl / plain copy: {etl / copy:.2f}x")


if __name__ == "__main__":
    main()
