"""ETL wall time vs DuckDB's plain CSV -> partitioned Parquet copy of the same file.

Both run as fresh processes (start-up counts), alternately, several rounds; prints medians and
the ratio. Usage: python bench/etl.py [--rows 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN_COPY = """
import duckdb, sys
src, out = sys.argv[1], sys.argv[2]
duckdb.sql(f'''COPY (SELECT *, year(t) AS year, month(t) AS month FROM (
    SELECT *, to_timestamp(TRY_CAST("time" AS DOUBLE)) AS t
    FROM read_csv('{src}', header = true, all_varchar = true, ignore_errors = true)))
  TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year, month))''')
"""


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-etl-"))
    try:
        src = work / "clickstream.csv"
        subprocess.run([sys.executable, "-m", "clickstream", "generate", "-n", str(args.rows),
                        "-o", str(src), "--bad-fraction", "0.01"], check=True)
        etl_times, copy_times = [], []
        for i in range(args.rounds):
            lake, out = work / f"lake{i}", work / f"copy{i}"
            etl_times.append(timed([sys.executable, "-m", "clickstream", "etl", "-q",
                                    "-i", str(src), "-l", str(lake)]))
            copy_times.append(timed([sys.executable, "-c", PLAIN_COPY, str(src), str(out)]))
            shutil.rmtree(lake)
            shutil.rmtree(out)
        etl, copy = statistics.median(etl_times), statistics.median(copy_times)
        print(f"rows: {args.rows:,}  rounds: {args.rounds} (alternating)")
        print(f"clickstream etl (full contract): {etl:6.2f} s   {args.rows / etl:,.0f} rows/s")
        print(f"duckdb plain CSV->Parquet copy:  {copy:6.2f} s   {args.rows / copy:,.0f} rows/s")
        print(f"ratio etl / plain copy: {etl / copy:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
