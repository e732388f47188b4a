"""``clickstream etl``: run the contract over raw CSV into the lake."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from clickstream.cli._common import err_console, progress_bar
from clickstream.lake.layout import AUTO_COMPACT_FILES
from clickstream.lake.report import RunReport

if TYPE_CHECKING:
    from clickstream.engines.base import Progress
    from clickstream.lake.compact import CompactionResult


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
        auto_compact: int = typer.Option(
            AUTO_COMPACT_FILES,
            "--auto-compact",
            help="Compact a partition written to once it holds this many runs' files (0: off).",
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or table."),
    ) -> None:
        """Validate, clean and enrich raw clickstream CSV into the partitioned Parquet lake."""
        from clickstream.errors import ConfigError
        from clickstream.pipeline import EtlOptions, run_etl

        if auto_compact < 0 or auto_compact == 1:
            raise ConfigError(f"invalid --auto-compact {auto_compact} (0 for off, or 2 or more)")

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
            compaction = _compact_after(report, auto_compact, progress)
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
        if compaction is not None and compaction.run_id is not None:
            files = sum(p.files_before for p in compaction.partitions)
            err_console.print(
                f"compacted {len(compaction.partitions)} partition(s): {files:,} files -> "
                f"{len(compaction.partitions)} (run {compaction.run_id})"
            )


def _compact_after(
    report: RunReport, min_files: int, progress: Progress
) -> CompactionResult | None:
    """The run's partitions compacted once they hold ``min_files`` runs' files.

    The run is committed by now: a failure here says so (the next run or ``compact`` catches
    up), and a lake another writer has just locked is left for that writer's run.
    """
    from clickstream.errors import ClickstreamError, LakeBusyError, LakeError, is_interrupt
    from clickstream.lake.compact import compact

    touched = [(p.year, p.month) for p in report.partitions]
    if not min_files or not touched:
        return None
    try:
        return compact(report.lake, min_files, progress, touched=touched)
    except LakeBusyError:
        return None
    except Exception as err:  # DuckDB's own errors too: the line must say the run is in
        if is_interrupt(err):
            raise
        detail = str(err) if isinstance(err, ClickstreamError) else f"{type(err).__name__}: {err}"
        raise LakeError(
            f"run {report.run_id} is committed, but compacting after it failed: {detail}"
        ) from err


def not_read_lines(report: RunReport) -> list[str]:
    """One line per input left out for a reason, the path and why (a path is user text:
    control characters and newlines escaped)."""
    from clickstream.query.output import printable

    def plain(text: str) -> str:
        return printable(text).replace("\n", "\\n")

    return [f"not read: {plain(f.path)}: {plain(f.reason)}" for f in report.not_read]
