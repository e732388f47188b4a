"""``clickstream sql``: query the lake with SQL (one query, stdin, or an interactive prompt)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from clickstream.cli._common import err_console, handle_errors, out_console
from clickstream.errors import ClickstreamError, ConfigError

FORMATS = ("table", "csv", "json")
HISTORY = Path("~/.clickstream_history").expanduser()


def _cell(value: Any) -> str:
    return "NULL" if value is None else str(value)


def print_result(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    elif fmt == "json":
        json.dump(
            [dict(zip(columns, row, strict=True)) for row in rows],
            sys.stdout,
            default=str,
            ensure_ascii=False,
        )
        sys.stdout.write("\n")
    else:
        table = Table(*columns, show_lines=False)
        for row in rows:
            table.add_row(*(_cell(v) for v in row))
        out_console.print(table)
        err_console.print(f"{len(rows):,} row{'s' if len(rows) != 1 else ''}")


def _dot_command(con: Any, line: str) -> bool:
    """Handle .tables / .schema / .help / .quit; return False to leave the prompt."""
    from clickstream.query.session import run_query

    word, _, arg = line.partition(" ")
    if word in (".quit", ".exit"):
        return False
    if word == ".tables":
        cols, rows = run_query(
            con,
            "SELECT table_name, table_type FROM information_schema.tables "
            "ORDER BY table_type, table_name",
        )
        print_result(cols, rows, "table")
    elif word == ".schema" and arg:
        print_result(*run_query(con, f"DESCRIBE {arg.strip()}"), "table")
    else:
        err_console.print(".tables | .schema NAME | .quit — statements end with ';'")
    return True


def repl(con: Any, fmt: str) -> None:
    """A small SQL prompt: multi-line statements ending in ';', history, dot commands."""
    from clickstream.query.session import run_query

    try:
        import readline

        if HISTORY.exists():
            readline.read_history_file(HISTORY)
    except (ImportError, OSError):
        readline = None  # type: ignore[assignment]
    err_console.print("clickstream SQL over the lake — .tables to list, .quit to leave")
    buffer: list[str] = []
    while True:
        try:
            line = input("clickstream> " if not buffer else "        ...> ")
        except (EOFError, KeyboardInterrupt):
            err_console.print()
            break
        if not buffer and line.strip().startswith("."):
            try:
                if not _dot_command(con, line.strip()):
                    break
            except ClickstreamError as err:
                err_console.print(f"[red]{err}[/]", highlight=False)
            continue
        buffer.append(line)
        if not line.rstrip().endswith(";"):
            continue
        sql, buffer = "\n".join(buffer), []
        try:
            print_result(*run_query(con, sql), fmt)
        except ClickstreamError as err:
            err_console.print(f"[red]{err}[/]", highlight=False)
    if readline is not None:
        try:
            readline.write_history_file(HISTORY)
        except OSError:
            pass


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def sql(
        query: str = typer.Argument(None, help="SQL to run; omit for a prompt (or pipe it in)."),
        lake: str = typer.Option("lake", "--lake", "-l", help="Lake root: folder or s3:// URI."),
        fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
        allow_path: list[Path] = typer.Option(
            [], "--allow-path", help="Also allow reading this file or folder (repeatable)."
        ),
    ) -> None:
        """Query the lake: tables clickstream, clickstream_rejected and the analytics views."""
        from clickstream.query.session import open_lake, run_query

        if fmt not in FORMATS:
            raise ConfigError(f"unknown format '{fmt}' (choose one of: {', '.join(FORMATS)})")
        con = open_lake(lake, allow_path)
        if query is None and not sys.stdin.isatty():
            query = sys.stdin.read()
        if query is None:
            repl(con, fmt)
            return
        print_result(*run_query(con, query), fmt)
