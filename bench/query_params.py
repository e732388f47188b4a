"""Query-string parsing scales with the number of parameters: one URL with n parameters.

Prints the ETL time per URL size and the ratio of times for a 10x larger URL (about 10 when
linear, about 100 when quadratic; 180,000 parameters took 24.4 s before the n log n rewrite).
Usage: python bench/query_params.py [--engine duckdb|spark]
"""

from __future__ import annotations

import argparse
import time

from bench._common import scratch

from clickstream.contract.schema import REQUIRED_INPUT_COLUMNS
from clickstream.pipeline import EtlOptions, run_etl


def one_url(params: int, engine: str) -> float:
    url = "https://a.com/?" + "&".join(f"k{i}=v{i}" for i in range(params))
    with scratch("params") as work:
        src = work / "in.csv"
        src.write_text(",".join(REQUIRED_INPUT_COLUMNS) + f"\nu1,{url},1600000000,b,o,1x1\n")
        t0 = time.perf_counter()
        report = run_etl(EtlOptions(input=str(src), lake=str(work / "lake"), engine=engine))
        seconds = time.perf_counter() - t0
        assert report.rows_written == 1
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", default="duckdb")
    engine = parser.parse_args().engine
    one_url(10, engine)  # warm-up (engine start)
    small, large = (one_url(n, engine) for n in (18_000, 180_000))
    print(f"{engine}: 18,000 parameters {small:.2f} s, 180,000 parameters {large:.2f} s")
    print(f"ratio for 10x the parameters: {large / small:.1f}")


if __name__ == "__main__":
    main()
