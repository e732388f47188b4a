"""``clickstream etl``: run the contract over raw CSV into the lake."""

from __future__ import annotations

import typer
from rich.table import Table

from clickstream.cli._common import err_console, progress_bar
from clickstream.lake.report import RunReport


def render_report(report: RunReport) -> Table:
    table = Table(title=f"run {report.run_id} ({report.engine})", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("files ingested", f"{len(report.input_files):,}")
    if report.skipped_files:
        table.add_row("files skipped (already ingested)", f"{len(report.skipped_files):,}")
    if report.not_read:
        table.add_row("files not read (see below)", f"{len(report.not_read):,}")
    table.add_row("rows read", f"{report.rows_read:,}")
    table.add_row("rows written", f"{report.rows_written:,}")
    table.add_row("rows rejected", f"{report.rows_rejected:,}")
    for reason, n in report.rejected_by_reason.items():
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("rows duplicate", f"{report.rows_duplicate:,}")
    table.add_row("partitions touched", f"{len(report.partitions):,}")
    table.add_row("seconds", f"{report.seconds:,.2f}")
    table.add_row("rows per second", f"{report.rows_per_second:,.0f}")
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def etl(
        input: str = typer.Option(..., "--input", "-i", help="CSV file, folder or glob."),
        lake: str = typer.Option("lake", "--lake", "-l", help="Lake root: folder or s3:// URI."),
        engine: str = typer.Option("duckdb", "--engine", help="Engine: duckdb or spark."),
        master: str = typer.Option(
            None, "--master", help="Spark master URL (spark engine; default local[*])."
        ),
        full_refresh: bool = typer.Option(
            False, "--full-refresh", help="Rebuild the lake from these inputs alone."
        ),
        memory_limit: str = typer.Option(
            None, "--memory-limit", help="DuckDB memory cap, e.g. 2GB (default 640MB; spills)."
        ),
        threads: int = typer.Option(
            None, "--threads", help="DuckDB worker threads (default or 0: all cores)."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or table."),
    ) -> None:
        """Validate, clean and enrich raw clickstream CSV into the partitioned Parquet lake."""
        from clickstream.pipeline import EtlOptions, run_etl

        options = EtlOptions(
            input=input,
            lake=lake,
            engine=engine,
            full_refresh=full_refresh,
            memory_limit=memory_limit,
            threads=None if threads == 0 else threads,
            master=master,
        )
        with progress_bar(not quiet) as progress:
            report = run_etl(options, progress)
        if quiet:
            return
        if report.input_files:
            err_console.print(render_report(report))
        elif report.not_read:
            err_console.print(
                f"nothing read: {len(report.skipped_files)} input file(s) already ingested, "
                f"{len(report.not_read)} not read"
            )
        else:
            err_console.print(
                f"nothing new: all {len(report.skipped_files)} input file(s) already ingested "
                "(use --full-refresh to rebuild)"
            )
        for line in not_read_lines(report):
            err_console.print(line, markup=False, highlight=False, soft_wrap=True)
        if report.input_files:
            err_console.print(f"report: {report.lake}/_runs/{report.run_id}.json")


def not_read_lines(report: RunReport) -> list[str]:
    """One line per input left out for a reason, the path and why (a path is user text:
    control characters and newlines escaped)."""
    from clickstream.query.output import printable

    def plain(text: str) -> str:
        return printable(text).replace("\n", "\\n")

    return [f"not read: {plain(f.path)}: {plain(f.reason)}" for f in report.not_read]
