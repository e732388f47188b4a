"""``clickstream sql``: query the lake with SQL (one query, stdin, or an interactive prompt)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from clickstream.cli._common import _state, err_console, out_console
from clickstream.errors import ClickstreamError, ConfigError
from clickstream.query.output import FORMATS, printable

HISTORY = Path("~/.clickstream_history").expanduser()


def print_result(session: Any, sql: str, fmt: str) -> None:
    """Run fenced SQL and stream its result to stdout (row count and notes on stderr)."""
    import duckdb
    import pyarrow as pa

    from clickstream.query import output

    columns, batches = session.batches(sql)
    try:
        if fmt == "csv":
            output.write_csv(columns, batches, sys.stdout)
        elif fmt == "json":
            output.write_json(columns, batches, sys.stdout)
        else:
            n, cut = output.write_table(columns, batches, out_console)
    except (duckdb.Error, pa.ArrowException) as err:  # a value our printers cannot convert
        sys.stdout.flush()
        raise output.unprintable(" ".join(str(err).split())) from None
    if fmt == "table":
        if cut:
            err_console.print(
                f"first {n:,} rows shown; use --format csv or json for every row",
                markup=False,
                highlight=False,
            )
        else:
            err_console.print(f"{n:,} row{'s' if n != 1 else ''}", markup=False)
    sys.stdout.flush()


def _error(err: ClickstreamError) -> None:
    err_console.print("error: " + printable(" ".join(str(err).split())), style="red",
                      markup=False, highlight=False)  # fmt: skip


def _dot_command(session: Any, line: str) -> bool:
    """Handle .tables / .schema / .help / .quit; return False to leave the prompt."""
    word, _, arg = line.partition(" ")
    if word in (".quit", ".exit"):
        return False
    if word == ".tables":
        print_result(
            session,
            "SELECT table_name, table_type FROM information_schema.tables "
            "ORDER BY table_type, table_name",
            "table",
        )
    elif word == ".schema" and arg:
        from clickstream.sqltext import sql_identifier

        print_result(session, f"DESCRIBE {sql_identifier(arg.strip())}", "table")
    else:
        err_console.print(".tables | .schema NAME | .quit — statements end with ';'", markup=False)
    return True


def _fresh(session: Any) -> bool:
    """The session on the lake as it is: reopened when a compaction or a run replaced files it
    had listed (or an earlier reopen failed). False, with the reason printed, when it cannot
    be reopened now; the prompt stays and tries again at the next line."""
    if not session.closed and not session.stale():
        return True
    try:
        session.reopen()
    except ClickstreamError as err:
        _error(err)
        return False
    err_console.print("reopened the session on the lake as it is now", markup=False)
    return True


def repl(session: Any, fmt: str) -> None:
    """A small SQL prompt: multi-line statements ending in ';', history, dot commands."""
    try:
        import readline

        if HISTORY.exists():
            readline.read_history_file(HISTORY)
    except (ImportError, OSError):
        readline = None  # type: ignore[assignment]
    err_console.print(
        "clickstream SQL over the lake — .tables to list, .quit to leave", markup=False
    )
    buffer: list[str] = []
    while True:
        try:
            line = input("clickstream> " if not buffer else "        ...> ")
        except (EOFError, KeyboardInterrupt):
            err_console.print()
            break
        if not buffer and line.strip().partition(" ")[0] in (".quit", ".exit"):
            break
        if line.strip() and not _fresh(session):
            buffer = []
            continue
        if not buffer and line.strip().startswith("."):
            try:
                if not _dot_command(session, line.strip()):
                    break
            except ClickstreamError as err:
                _error(err)
            continue
        buffer.append(line)
        if not line.rstrip().endswith(";"):
            continue
        sql, buffer = "\n".join(buffer), []
        try:
            print_result(session, sql, fmt)
        except ClickstreamError as err:
            _error(err)
            _fresh(session)
        except Exception as err:  # a bug of ours must not end the user's session
            if _state["debug"]:
                raise
            _error(ClickstreamError(f"unexpected error ({type(err).__name__}: {err})"))
            _fresh(session)
    if readline is not None:
        try:
            readline.write_history_file(HISTORY)
        except OSError:
            pass


class _NoPandas:
    """An import finder that says pandas is not installed.

    DuckDB imports pandas (0.26 s, more than a view's answer) whenever it is handed Arrow data,
    only to ask whether the object is a DataFrame; ``--format json`` hands it each batch. This
    process never uses pandas (replacement scans are off in every connection), so saying it is
    absent changes nothing but the time. Only the ``sql`` command installs it.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _without_pandas() -> None:
    if "pandas" not in sys.modules and not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())


def register(app: typer.Typer) -> None:
    @app.command()
    def sql(
        query: str = typer.Argument(None, help="SQL to run; omit for a prompt (or pipe it in)."),
        lake: str = typer.Option("lake", "--lake", "-l", help="Lake root: folder or s3:// URI."),
        fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
        allow_path: list[str] = typer.Option(
            [], "--allow-path", help="Also allow reading this file or folder (repeatable)."
        ),
    ) -> None:
        """Query the lake (read-only): tables clickstream, clickstream_rejected and the views."""
        from clickstream.query.session import open_lake

        _without_pandas()
        if fmt not in FORMATS:
            raise ConfigError(f"unknown format '{fmt}' (choose one of: {', '.join(FORMATS)})")
        if query is None and not sys.stdin.isatty():
            query = sys.stdin.read()
        with open_lake(lake, allow_path, exact_arrow=True) as session:
            if query is None:
                repl(session, fmt)
                return
            try:
                print_result(session, query, fmt)
            except BrokenPipeError:
                # The reader left (`| head`): stop quietly, like any Unix filter.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                raise typer.Exit(141) from None
