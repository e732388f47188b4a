"""``clickstream catalog``: a DuckDB database file holding the lake's tables and views."""

from __future__ import annotations

import typer

from clickstream.cli._common import err_console


def register(app: typer.Typer) -> None:
    @app.command()
    def catalog(
        out: str = typer.Option(..., "--out", "-o", help="The .duckdb file to write."),
        lake: str = typer.Option("lake", "--lake", "-l", help="Lake root: folder or s3:// URI."),
    ) -> None:
        """Write a DuckDB file with views over the lake, for any DuckDB client or BI tool."""
        from clickstream.query.catalog import write_catalog

        names = write_catalog(out, lake)
        err_console.print(f"wrote {out} with {len(names)} views: {', '.join(names)}", markup=False)
        err_console.print(
            f"open it read-only (duckdb -readonly {out}); it has no query fence: see README",
            markup=False,
        )
