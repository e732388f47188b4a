"""The stream end to end on the embedded broker: publish, then consume with statistics.

Each step runs as its own fresh process (start-up included) and is measured alone: wall time,
events/s, and its peak RSS (plus the broker's, read from the server). End to end (sequential) =
events over the two wall times added up. Then both run again at once, as they do live, on a
fresh broker: end to end (live) = events over the time from starting both until the consumer has
committed the last event (its idle wait before exiting not counted; the count is checked).

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
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(u.ru_utime + u.ru_stime, u.ru_maxrss); sys.exit(r.returncode)"
)


def measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MiB, CPU seconds) of ``cmd`` as a fresh process. CPU time
    tells the step's own cost on a shared machine, where wall time also counts waiting."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *cmd],
        env=env, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    cpu, rss = out.stdout.split()[-2:]
    return time.perf_counter() - t0, int(rss) / 1024, float(cpu)


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
        pub_s, pub_mb, pub_cpu = measured([*CLI, "stream", "publish", "--lake", str(lake)], env)
        stats = [*CLI, "stream", "stats", "--lake", str(lake), "--idle-exit", "1", "-q",
                 "--batch-size", str(args.batch_size), "--consumer", "bench"]  # fmt: skip
        con_s, con_mb, con_cpu = measured(stats, env)
        con_s -= 1.0  # the idle wait before it exits is not work
        broker_mb, broker_cpu = _broker_rss(work / "broker")
        subprocess.run([*CLI, "stream", "stop-broker", "--lake", str(lake)], env=env, check=True,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        live_s, live_counted = _live(lake, work / "broker-live", args.batch_size)
        print(f"events: {events:,} (embedded broker, batch size {args.batch_size:,}, "
              f"{os.cpu_count()} cores)")  # fmt: skip
        print(f"publish:            {pub_s:6.2f} s  {events / pub_s:10,.0f} events/s  "
              f"peak RSS {pub_mb:6.0f} MiB  CPU {pub_cpu:5.1f} s")  # fmt: skip
        print(f"consume with stats: {con_s:6.2f} s  {events / con_s:10,.0f} events/s  "
              f"peak RSS {con_mb:6.0f} MiB  CPU {con_cpu:5.1f} s")  # fmt: skip
        print(f"end to end (seq.):  {pub_s + con_s:6.2f} s  {events / (pub_s + con_s):10,.0f} "
              f"events/s  (target 200,000)")  # fmt: skip
        print(f"end to end (live):  {live_s:6.2f} s  {events / live_s:10,.0f} events/s  "
              f"(publish and stats at once; {live_counted:,} events counted)")  # fmt: skip
        print(f"broker (redis-server) peak RSS: {broker_mb:.0f} MiB, CPU {broker_cpu:.1f} s")
        print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _live(lake: Path, broker_dir: Path, batch_size: int) -> tuple[float, int]:
    """Publish and consume at once on a fresh broker; (seconds, events the consumer counted)."""
    env = {**os.environ, "CLICKSTREAM_BROKER_DIR": str(broker_dir)}
    idle = 3.0
    stats = [*CLI, "stream", "stats", "--lake", str(lake), "--idle-exit", str(idle), "-q",
             "--batch-size", str(batch_size), "--consumer", "live", "--group", "live"]  # fmt: skip
    publish = [*CLI, "stream", "publish", "--lake", str(lake)]
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    from clickstream.stream import broker

    # The broker is started first so neither process pays for it (nor races to start it).

    broker.ensure_running(broker_dir)
    t0 = time.perf_counter()
    consumer = subprocess.Popen(stats, **quiet)  # type: ignore[call-overload]
    subprocess.run(publish, **quiet, check=True)
    if consumer.wait() != 0:
        raise SystemExit("stream stats failed in the live run")
    seconds = time.perf_counter() - t0 - idle
    subprocess.run([*CLI, "stream", "stop-broker", "--lake", str(lake)], **quiet, check=True)
    import duckdb

    counted = duckdb.sql(
        f"SELECT sum(events) FROM read_parquet('{lake}/stream/consumer_group=live/*.parquet', "
        "union_by_name = true) WHERE kind = 'batch'"
    ).fetchone()
    return seconds, int(counted[0] or 0)  # type: ignore[index]


def _lake_rows(lake: Path) -> int:
    import duckdb

    row = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/clickstream/**/*.parquet')")
    return int(row.fetchone()[0])  # type: ignore[index]


def _broker_rss(folder: Path) -> tuple[float, float]:
    import redis

    from clickstream.stream import broker

    client = redis.Redis(unix_socket_path=str(broker.socket_path(folder)))
    memory, cpu = client.info("memory"), client.info("cpu")
    return float(memory["used_memory_peak"]) / 2**20, float(
        cpu["used_cpu_user"] + cpu["used_cpu_sys"]
    )


if __name__ == "__main__":
    main()
