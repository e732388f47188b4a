"""``clickstream catalog``: a DuckDB database file holding the lake's tables and views."""

from __future__ import annotations

from pathlib import Path

import typer

from clickstream.cli._common import err_console, handle_errors
from clickstream.errors import ConfigError


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def catalog(
        out: Path = typer.Option(..., "--out", "-o", help="The .duckdb file to write."),
        lake: str = typer.Option("lake", "--lake", "-l", help="Lake root: folder or s3:// URI."),
    ) -> None:
        """Write a DuckDB file with views over the lake, for any DuckDB client or BI tool."""
        from clickstream.query.catalog import write_catalog

        if out.suffix not in (".duckdb", ".db"):
            raise ConfigError(f"{out}: the catalog file should end in .duckdb")
        names = write_catalog(out, lake)
        err_console.print(f"wrote {out} with {len(names)} views: {', '.join(names)}")
        err_console.print(f"open it read-only, e.g. duckdb -readonly {out}")
