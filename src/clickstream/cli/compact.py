"""``clickstream compact``: rewrite each partition's many small files into one."""

from __future__ import annotations

import typer

from clickstream.cli._common import err_console, progress_bar


def register(app: typer.Typer) -> None:
    @app.command()
    def compact(
        lake: str = typer.Option("lake", "--lake", "-l", help="Lake root: folder or s3:// URI."),
        min_files: int = typer.Option(
            2, "--min-files", help="Rewrite partitions holding at least this many files (>= 2)."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    ) -> None:
        """Rewrite each partition's small files into one: atomic, crash-safe, idempotent."""
        from clickstream.lake.compact import compact as run_compaction

        with progress_bar(not quiet) as progress:
            result = run_compaction(lake, min_files, progress)
        if quiet:
            return
        if result.run_id is None:
            err_console.print(f"nothing to compact: no partition holds {min_files} or more files")
            return
        files = sum(p.files_before for p in result.partitions)
        rows = sum(p.rows for p in result.partitions)
        err_console.print(
            f"compacted {len(result.partitions)} partition(s): {files:,} files -> "
            f"{len(result.partitions)}, {rows:,} rows, {result.seconds:.2f} s "
            f"(run {result.run_id})"
        )
