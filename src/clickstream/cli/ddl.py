"""``clickstream ddl``: the table and view definitions for DuckDB, Spark SQL or Athena."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def ddl(
        dialect: str = typer.Option(..., "--dialect", "-d", help="duckdb, spark or athena."),
        lake: str = typer.Option("lake", "--lake", "-l", help="Lake location (path or s3://)."),
    ) -> None:
        """Print CREATE statements for the lake's tables and views in an engine's dialect."""
        from pathlib import Path

        from clickstream.query.ddl import ddl_statements

        location = lake if "://" in lake else str(Path(lake).absolute())
        typer.echo(";\n\n".join(ddl_statements(dialect, location)) + ";")
