"""ETL wall time vs its I/O floor (and vs DuckDB's plain CSV -> Parquet copy) on the same file.

The floor, as issue #11 defines it: one fresh process that reads the same CSV into memory and
writes the run's own output rows (the lake the ETL just wrote, loaded beforehand and not timed)
as partitioned zstd Parquet; start-up included. Everything runs as fresh processes, alternately,
several rounds; prints medians and the ratios, and the CPU seconds of the contract's query alone.
Usage: python bench/etl.py [--rows N] [--rounds R]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import etl_cmd, generate, scratch

PLAIN_COPY = """
import duckdb, sys
src, out = sys.argv[1], sys.argv[2]
duckdb.sql(f'''COPY (SELECT *, year(t) AS year, month(t) AS month FROM (
    SELECT *, to_timestamp(TRY_CAST("time" AS DOUBLE)) AS t
    FROM read_csv('{src}', header = true, all_varchar = true, ignore_errors = true)))
  TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year, month))''')
"""

#: Prints the seconds spent loading the output rows (not part of the floor).
FLOOR = """
import duckdb, sys, time
src, lake, out = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute('SET enable_progress_bar = false')
con.execute(f'''CREATE TABLE raw AS SELECT * FROM read_csv('{src}', header = true,
    all_varchar = true, quote = '"', escape = '"', auto_detect = false,
    columns = {{'a': 'VARCHAR', 'b': 'VARCHAR', 'c': 'VARCHAR', 'd': 'VARCHAR', 'e': 'VARCHAR',
    'f': 'VARCHAR'}}, ignore_errors = true)''')
t0, c0 = time.perf_counter(), time.process_time()
con.execute(f'''CREATE TABLE rows AS SELECT * FROM read_parquet('{lake}/clickstream/*/*/*.parquet',
    hive_partitioning = true)''')
prep, prep_cpu = time.perf_counter() - t0, time.process_time() - c0
con.execute(f'''COPY rows TO '{out}' (FORMAT parquet, COMPRESSION zstd,
    PARTITION_BY (year, month))''')
print(prep, prep_cpu)
"""

#: The contract's query alone over the same CSV already in memory (the part rules.py decides);
#: prints its CPU seconds (all threads of the process).
CONTRACT = """
import duckdb, sys, time
from clickstream.contract.dialects import DUCKDB
from clickstream.contract.rules import RAW_FIELDS, contract_select
con = duckdb.connect()
con.execute('SET enable_progress_bar = false')
cols = ', '.join(f'c{i} AS {raw}' for i, raw in enumerate(RAW_FIELDS.values()))
types = ', '.join(f"'c{i}': 'VARCHAR'" for i in range(len(RAW_FIELDS)))
con.execute(f'''CREATE TABLE raw AS SELECT {cols}, filename AS source_file FROM read_csv(
    '{sys.argv[1]}', header = true, auto_detect = false, quote = '"', escape = '"',
    columns = {{{types}}}, filename = true, ignore_errors = true)''')
c0 = time.process_time()
con.execute('CREATE TABLE staged AS ' + contract_select('SELECT * FROM raw', DUCKDB))
print(time.process_time() - c0)
"""


def run(cmd: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system) of a fresh process, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def floor(src: Path, lake: Path, out: Path) -> tuple[float, float]:
    wall, cpu, stdout = run([sys.executable, "-c", FLOOR, str(src), str(lake), str(out)])
    prep, prep_cpu = (float(x) for x in stdout.split()[-2:])
    return wall - prep, cpu - prep_cpu


def contract_cpu(src: Path) -> float:
    return float(run([sys.executable, "-c", CONTRACT, str(src)])[2].split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with scratch("etl") as work:
        src = generate(work / "clickstream.csv", args.rows)
        etl_runs, floor_runs, copy_runs = [], [], []
        contract_runs: list[float] = []
        for i in range(args.rounds):
            lake, out, copy = work / f"lake{i}", work / f"floor{i}", work / f"copy{i}"
            etl_runs.append(run(etl_cmd(src, lake))[:2])
            floor_runs.append(floor(src, lake, out))
            copy_runs.append(run([sys.executable, "-c", PLAIN_COPY, str(src), str(copy)])[:2])
            contract_runs.append(contract_cpu(src))
            for folder in (lake, out, copy):
                shutil.rmtree(folder)
    etl_times, floor_times = [w for w, _ in etl_runs], [w for w, _ in floor_runs]
    etl, flo = statistics.median(etl_times), statistics.median(floor_times)
    copy = statistics.median(w for w, _ in copy_runs)
    etl_cpu, floor_cpu = (
        statistics.median(c for _, c in etl_runs),
        statistics.median(c for _, c in floor_runs),
    )
    print(f"rows: {args.rows:,}  rounds: {args.rounds} (alternating)")
    print(f"clickstream etl (full contract): {etl:6.2f} s   {args.rows / etl:,.0f} rows/s")
    print(f"I/O floor (CSV in + output out): {flo:6.2f} s   {args.rows / flo:,.0f} rows/s")
    print(f"duckdb plain CSV->Parquet copy:  {copy:6.2f} s   {args.rows / copy:,.0f} rows/s")
    print(
        f"ratio etl / floor: {etl / flo:.2f}x   (each round: "
        + ", ".join(f"{e / f:.2f}x" for e, f in zip(etl_times, floor_times, strict=True))
        + ")"
    )
    print(f"ratio etl / plain copy: {etl / copy:.2f}x")
    # CPU seconds do not depend on what else the machine runs (wall time on a shared box does).
    print(f"CPU s: etl {etl_cpu:.2f}, floor {floor_cpu:.2f}; ratio {etl_cpu / floor_cpu:.2f}x")
    # Start-up and the CSV load excluded: what the contract's SQL (rules.py) costs by itself.
    contract = statistics.median(contract_runs)
    print(f"CPU s: the contract query alone, CSV already in memory: {contract:.2f}")


if __name__ == "__main__":
    main()
