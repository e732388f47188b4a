"""``clickstream report``: the dashboard as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import typer

from clickstream.cli._common import err_console, out_console, progress_bar


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        lake: str = typer.Option("lake", "--lake", "-l", help="Lake root: folder or s3:// URI."),
        out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write."),
        start: str = typer.Option(
            None, "--from", help="First UTC day, YYYY-MM-DD (default: 30 days before --to)."
        ),
        end: str = typer.Option(
            None, "--to", help="Last UTC day, YYYY-MM-DD (default: the last day with data)."
        ),
        host: str = typer.Option(None, "--host", help="Only this host (default: all hosts)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    ) -> None:
        """Write a dashboard of the lake (KPIs, trends, pages, sources, devices, data quality)
        as one HTML file that opens offline and can be mailed."""
        from clickstream.query.output import printable
        from clickstream.report import ReportOptions, build_report
        from clickstream.report.format import size
        from clickstream.report.period import parse_day

        options = ReportOptions(
            lake=lake,
            out=out,
            start=parse_day(start, "--from"),
            end=parse_day(end, "--to"),
            host=host,
        )
        with progress_bar(enabled=not quiet) as progress:
            result = build_report(options, progress)
        if not quiet:
            err_console.print(
                f"report for {result.period}: {size(result.size)}, queries "
                f"{result.query_seconds:.2f} s, total {result.total_seconds:.2f} s",
                highlight=False,
            )
        # The path is the user's: printed literally (no markup) and with controls escaped.
        out_console.print(
            printable(str(result.path.absolute())), highlight=False, markup=False, soft_wrap=True
        )
