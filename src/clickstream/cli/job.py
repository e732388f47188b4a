"""The ETL as a spark-submit application (an EMR step): arguments in, run report out.

Standard library and this package only (argparse, not typer): the cluster has no CLI extras.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from clickstream.errors import ClickstreamError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="clickstream_job.py", description="Run the clickstream ETL on Spark."
    )
    parser.add_argument("--input", required=True, help="CSV file, folder or glob")
    parser.add_argument("--lake", required=True, help="lake root: a folder or an s3:// URI")
    parser.add_argument("--full-refresh", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from clickstream.pipeline import EtlOptions, run_etl

    try:
        report = run_etl(
            EtlOptions(
                input=args.input,
                # The string as given: Path("s3://b/lake") would become the local "s3:/b/lake".
                lake=args.lake,
                engine="spark",
                full_refresh=args.full_refresh,
            )
        )
    except ClickstreamError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    print(json.dumps(report.to_dict()))


if __name__ == "__main__":
    main()
