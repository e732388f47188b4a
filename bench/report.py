"""Time `clickstream report` on a large lake, against one full `sessions` scan as the yardstick.

Usage: python bench/report.py [--rows 10000000] [--repeat 3] [--lake PATH (reuse a built lake)]

Prints the report's median wall time as a fresh process (start-up included), the time of its
queries alone, the HTML size, and the ratio to `SELECT count(*) FROM sessions` over the whole lake
(the heaviest single view) on the same machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

from _common import CLI, etl_cmd, generate, scratch, timed

from clickstream.query.session import open_lake
from clickstream.report import ReportOptions, build_report


def median(values: list[float]) -> float:
    return statistics.median(values)


def run(lake: Path, work: Path, repeat: int) -> None:
    out = work / "report.html"
    cli = [*CLI, "report", "--quiet", "--lake", str(lake), "--out", str(out)]
    wall = median([timed(cli) for _ in range(repeat)])
    inproc = [build_report(ReportOptions(str(lake), out)) for _ in range(repeat)]
    queries = median([r.query_seconds for r in inproc])
    total = median([r.total_seconds for r in inproc])
    with open_lake(str(lake)) as session:
        rows = session.execute("SELECT count(*) FROM clickstream").fetchone()[0]
        scans = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            session.execute("SELECT count(*) FROM sessions").fetchone()
            scans.append(time.perf_counter() - t0)
    scan = median(scans)
    print(f"lake rows                      {rows:>12,}")
    print(f"report, CLI wall (fresh proc)  {wall:>10.2f} s")
    print(f"report, in-process total       {total:>10.2f} s")
    print(f"report, queries only           {queries:>10.2f} s")
    print(f"full sessions view scan        {scan:>10.2f} s")
    print(f"ratio report/sessions scan     {total / scan:>10.2f}x")
    print(f"html size                      {out.stat().st_size / 1024 / 1024:>10.2f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lake", type=Path)
    args = parser.parse_args()
    with scratch("report") as work:
        lake = args.lake
        if lake is None:
            src = generate(work / "in.csv.gz", args.rows)
            lake = work / "lake"
            subprocess.run(etl_cmd(src, lake), check=True)
        run(lake, work, args.repeat)


if __name__ == "__main__":
    main()
