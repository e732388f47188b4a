"""``clickstream demo``: generate a sample, run the ETL, show the report and a few queries."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from clickstream.cli._common import err_console, out_console, progress_bar
from clickstream.cli.etl import render_report

EXAMPLES = {
    "Page views and visitors per month": """
        SELECT year, month, count(*) AS pageviews, count(DISTINCT anonymous_user_id) AS users
        FROM clickstream GROUP BY ALL ORDER BY ALL""",
    "Top traffic sources": """
        SELECT coalesce(utm_source, '(direct)') AS source, coalesce(utm_medium, '-') AS medium,
               count(*) AS pageviews
        FROM clickstream GROUP BY ALL ORDER BY pageviews DESC LIMIT 5""",
    "Quarantined rows by reason": """
        SELECT reject_reason, count(*) AS rows FROM clickstream_rejected
        GROUP BY ALL ORDER BY rows DESC""",
}


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        rows: int = typer.Option(100_000, "--rows", "-n", help="Sample size."),
        lake: Path = typer.Option(Path("lake"), "--lake", "-l", help="Lake root folder."),
        sample: Path = typer.Option(
            Path("sample/clickstream.csv.gz"), "--sample", help="Where to write the sample."
        ),
    ) -> None:
        """Generate a sample, load it into ./lake and run example queries (offline)."""
        from clickstream.generate import generate
        from clickstream.pipeline import EtlOptions, run_etl
        from clickstream.query.session import open_lake
        from clickstream.report import ReportOptions, build_report

        generate(sample, rows, seed=7, bad_fraction=0.02)
        err_console.print(f"generated {rows:,} sample rows in {sample}")
        with progress_bar() as progress:
            report = run_etl(
                EtlOptions(input=str(sample), lake=str(lake), full_refresh=True), progress
            )
        err_console.print(render_report(report))
        con = open_lake(lake)
        for title, sql in EXAMPLES.items():
            result = con.execute(sql)
            table = Table(title=title)
            for col in result.description:
                table.add_column(col[0])
            for row in result.fetchall():
                table.add_row(*("" if v is None else str(v) for v in row))
            out_console.print(table)
        with progress_bar() as progress:
            dashboard = build_report(ReportOptions(str(lake), Path("report.html")), progress)
        out_console.print(
            f"dashboard: {dashboard.path.absolute()}", highlight=False, soft_wrap=True
        )
        from clickstream.stream.demo import demo_stream

        demo_stream(str(lake), out_console, err_console)
        err_console.print(
            f'next: clickstream sql "SELECT * FROM clickstream LIMIT 5" --lake {lake}'
        )
