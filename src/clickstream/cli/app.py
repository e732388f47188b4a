"""The ``clickstream`` app. Each sub-command lives in its own module and imports heavy
dependencies (DuckDB, PyArrow, PySpark, boto3) only when it runs."""

from __future__ import annotations

import typer

from clickstream.cli import (
    _common,
    catalog,
    compact,
    ddl,
    demo,
    deploy,
    etl,
    generate,
    package,
    report,
    sql,
    stream,
)

app = typer.Typer(
    name="clickstream",
    help="Clickstream pipeline: raw page-view CSV -> clean, partitioned Parquet lake + SQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Errors become one line here, once, for every command.
    cls=_common.ErrorHandlingGroup,
)


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
) -> None:
    _common.configure(debug)


for module in (etl, compact, generate, demo, sql, catalog, ddl, package, deploy, report, stream):
    module.register(app)


def main() -> None:
    app()


__all__ = ["app", "main"]
