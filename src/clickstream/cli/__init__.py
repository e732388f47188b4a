"""The ``clickstream`` command (built in ``cli/app.py``; one module per sub-command).

Importing this package costs nothing: the app, and typer with it, load when ``main`` runs or
``app`` is asked for. So ``cli/job.py`` (the spark-submit entry point, run on clusters that have
neither typer nor rich) lives with the rest of the CLI.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn


def main() -> None:
    # Ctrl-C can land anywhere, also while typer or a command's lazy imports load: one line.
    try:
        from clickstream.cli.app import main as run

        run()
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as done:
        # typer turns Ctrl-C while it parses options (lazy imports run there) into a silent
        # exit 130; a command's own interrupt has printed its line already (the chain ends).
        if done.code == 130 and _caused_by_interrupt(done):
            _interrupted()
        raise


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return False


def _interrupted() -> NoReturn:
    import signal

    # Nothing imported or formatted here, and a second Ctrl-C is ignored: it stays one line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sys.stderr.write("error: interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    raise SystemExit(130)


def __getattr__(name: str) -> Any:
    if name == "app":
        from clickstream.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
