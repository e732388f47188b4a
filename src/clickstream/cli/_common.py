"""What every command shares: the consoles, logging set-up and turning errors into one line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from clickstream.errors import ClickstreamError, is_interrupt

#: Human output (tables, progress, errors) goes to stderr so stdout stays clean for data.
err_console = Console(stderr=True)
out_console = Console()
_state = {"debug": False}
INTERRUPTED = "interrupted; nothing was committed by the interrupted step"


def configure(debug: bool) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Third-party chatter stays out even with --debug.
    for noisy in ("asyncio", "botocore", "urllib3", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 1) -> typer.Exit:
    from rich.markup import escape

    from clickstream.query.output import printable

    # The message may quote user data (a path, SQL): never markup, never terminal controls.
    err_console.print(
        f"[bold red]error:[/] {escape(printable(message))}", highlight=False, soft_wrap=True
    )
    return typer.Exit(code)


def _one_line(message: str) -> str:
    return " ".join(message.split()) or "(no message)"


def _usage_message(err: Exception) -> str | None:
    """A command-line mistake (click's ``UsageError``, also as typer vendors it) as one line
    naming the command's help; None for anything else (and for a bare command, which shows
    its help)."""
    names = {cls.__name__ for cls in type(err).__mro__}
    if "UsageError" not in names or "NoArgsIsHelpError" in names:
        return None
    ctx = getattr(err, "ctx", None)
    command = getattr(ctx, "command_path", None) or "clickstream"
    return f"{_one_line(err.format_message())} (see `{command} --help`)"  # type: ignore[attr-defined]


class ErrorHandlingGroup(TyperGroup):
    """The command group: every command's errors become one line on stderr, handled here once.

    A ClickstreamError prints its message; anything else is a bug and says so (both exit
    non-zero). ``--debug`` shows the traceback instead.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except Exception as err:
            usage = _usage_message(err)
            if usage is None:
                raise
            raise fail(usage, 2) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except ClickstreamError as err:
            if is_interrupt(err.__cause__) or is_interrupt(err.__context__):
                raise fail(INTERRUPTED, 130) from None
            if _state["debug"]:
                raise
            raise fail(_one_line(str(err)), err.exit_code) from None
        except KeyboardInterrupt:
            raise fail(INTERRUPTED, 130) from None
        except Exception as err:
            usage = _usage_message(err)
            if usage is not None:
                raise fail(usage, 2) from None
            if isinstance(err, typer.TyperException):
                raise
            if is_interrupt(err):  # Ctrl-C inside a DuckDB query
                raise fail(INTERRUPTED, 130) from None
            if _state["debug"]:
                raise
            detail = _one_line(f"{type(err).__name__}: {err}")
            raise fail(f"unexpected error ({detail}); rerun with --debug for details") from None


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[str, float | None], None]]:
    """A progress callback drawing one bar on stderr (silent when stderr is not a terminal)."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not enabled or not err_console.is_terminal,
    )
    task: TaskID | None = None

    def update(stage: str, fraction: float | None) -> None:
        nonlocal task
        if task is None:
            task = progress.add_task(stage, total=1.0)
        progress.update(task, description=stage, completed=fraction or 0.0)

    with progress:
        yield update
