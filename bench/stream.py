"""The stream end to end on the embedded broker: publish, then consume with statistics.

Each step runs as its own fresh process (start-up included) and is measured alone: wall time,
events/s, and its peak RSS (plus the broker's, read from the server). End to end = events over
the two wall times added up (the steps run one after the other here; live, they overlap).

Usage: python bench/stream.py [--rows 1000000] [--batch-size 10000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import CLI, etl_cmd, generate, scratch

#: Runs a step as its child so the peak RSS is the step's alone.
LAUNCHER = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
)


def measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of ``cmd`` as a fresh process."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *cmd],
        env=env, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    return time.perf_counter() - t0, int(out.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()
    with scratch("stream") as work:
        lake = work / "lake"
        src = generate(work / "clickstream.csv.gz", args.rows, bad_fraction=0.0)
        subprocess.run(etl_cmd(src, lake), check=True, stderr=subprocess.DEVNULL)
        env = {**os.environ, "CLICKSTREAM_BROKER_DIR": str(work / "broker")}
        events = _lake_rows(lake)
        pub_s, pub_mb = measured([*CLI, "stream", "publish", "--lake", str(lake)], env)
        stats = [*CLI, "stream", "stats", "--lake", str(lake), "--idle-exit", "1", "-q",
                 "--batch-size", str(args.batch_size), "--consumer", "bench"]  # fmt: skip
        con_s, con_mb = measured(stats, env)
        con_s -= 1.0  # the idle wait before it exits is not work
        broker_mb = _broker_rss(work / "broker")
        subprocess.run([*CLI, "stream", "stop-broker", "--lake", str(lake)], env=env, check=True,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        print(f"events: {events:,} (embedded broker, batch size {args.batch_size:,}, "
              f"{os.cpu_count()} cores)")  # fmt: skip
        print(f"publish:            {pub_s:6.2f} s  {events / pub_s:10,.0f} events/s  "
              f"peak RSS {pub_mb:6.0f} MiB")  # fmt: skip
        print(f"consume with stats: {con_s:6.2f} s  {events / con_s:10,.0f} events/s  "
              f"peak RSS {con_mb:6.0f} MiB")  # fmt: skip
        print(f"end to end:         {pub_s + con_s:6.2f} s  {events / (pub_s + con_s):10,.0f} "
              f"events/s  (target 200,000)")  # fmt: skip
        print(f"broker (redis-server) peak RSS: {broker_mb:.0f} MiB")


def _lake_rows(lake: Path) -> int:
    import duckdb

    row = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/clickstream/**/*.parquet')")
    return int(row.fetchone()[0])  # type: ignore[index]


def _broker_rss(folder: Path) -> float:
    import redis

    from clickstream.stream import broker

    info = redis.Redis(unix_socket_path=str(broker.socket_path(folder))).info("memory")
    return float(info["used_memory_peak"]) / 2**20


if __name__ == "__main__":
    main()
