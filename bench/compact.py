"""Small files: the views after 100 small runs, after compacting them, and after one big run.

Issue #11, target 4. The same rows reach two lakes: one in ``--runs`` small ETL runs into the
same months (one file per run per month), one in a single run. Each view query is timed on the
small-files lake (``--auto-compact 0``) before and after ``clickstream compact``, on a third lake
fed the same small runs with etl's automatic compaction (the default), and on the one-run lake;
the ratios are printed side by side (median of ``--repeat``, one session per lake, warm).

Usage: python bench/compact.py [--rows 1000000] [--runs 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import CLI, etl_cmd, generate, scratch

from clickstream.query.session import open_lake

QUERIES = {
    "pageviews_daily": "SELECT * FROM pageviews_daily",
    "traffic_sources": "SELECT * FROM traffic_sources",
    "top_pages": "SELECT * FROM top_pages",
    "devices": "SELECT * FROM devices",
    "sessions (aggregate)": "SELECT count(*), avg(duration_seconds), avg(is_bounce::INT) "
    "FROM sessions",
    "count(*) clickstream": "SELECT count(*) FROM clickstream",
}


def split(src: Path, parts: int, out: Path) -> list[Path]:
    """The file cut into ``parts`` CSV files with the header each (consecutive lines)."""
    header, *lines = src.read_text().splitlines(keepends=True)
    size = -(-len(lines) // parts)
    files = []
    for i in range(parts):
        path = out / f"part{i:03d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + "".join(lines[i * size : (i + 1) * size]))
        files.append(path)
    return files


def timings(lake: Path, repeat: int) -> dict[str, float]:
    session = open_lake(lake)
    out = {}
    for name, sql in QUERIES.items():
        session.execute(sql).to_arrow_table()  # warm: metadata and OS cache
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            session.execute(sql).to_arrow_table()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


def files_in(lake: Path) -> int:
    return len(list((lake / "clickstream").rglob("*.parquet")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with scratch("compact") as work:
        src = generate(work / "all.csv", args.rows, bad_fraction=0.0)
        small, big, auto = work / "small", work / "big", work / "auto"
        auto_seconds = 0.0
        for part in split(src, args.runs, work / "parts"):
            subprocess.run(etl_cmd(part, small, "--auto-compact", "0"), check=True)
            t0 = time.perf_counter()
            subprocess.run(etl_cmd(part, auto), check=True)  # the default: --auto-compact 16
            auto_seconds += time.perf_counter() - t0
        subprocess.run(etl_cmd(src, big), check=True)
        files_before = files_in(small)
        before = timings(small, args.repeat)
        automatic = timings(auto, args.repeat)
        t0 = time.perf_counter()
        subprocess.run([*CLI, "compact", "-q", "-l", str(small)], check=True)
        compact_seconds = time.perf_counter() - t0
        after = timings(small, args.repeat)
        one_run = timings(big, args.repeat)
        print(f"rows: {args.rows:,}; {args.runs} small runs vs one run; median of {args.repeat}")
        print(
            f"files: {files_before} before compaction, {files_in(small)} after, "
            f"{files_in(big)} from one run; compaction took {compact_seconds:.2f} s "
            "(fresh process)"
        )
        print(
            f"automatic (etl's default --auto-compact 16): {files_in(auto)} files; the "
            f"{args.runs} runs took {auto_seconds:.2f} s in all, compactions included"
        )
        print(f"{'query':<24}{'small files':>12}{'compacted':>12}{'automatic':>12}{'one run':>10}"
              f"{'small/one':>11}{'compacted/one':>15}{'auto/one':>10}")  # fmt: skip
        for name in QUERIES:
            b, a, u, o = before[name], after[name], automatic[name], one_run[name]
            print(f"{name:<24}{b:>11.3f}s{a:>11.3f}s{u:>11.3f}s{o:>9.3f}s{b / o:>10.2f}x"
                  f"{a / o:>14.2f}x{u / o:>9.2f}x")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
