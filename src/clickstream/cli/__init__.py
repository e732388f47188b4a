"""The ``clickstream`` command (built in ``cli/app.py``; one module per sub-command).

Importing this package costs nothing: the app, and typer with it, load when ``main`` runs or
``app`` is asked for. So ``cli/job.py`` (the spark-submit entry point, run on clusters that have
neither typer nor rich) lives with the rest of the CLI.
"""

from __future__ import annotations

from typing import Any


def main() -> None:
    from clickstream.cli.app import main as run

    run()


def __getattr__(name: str) -> Any:
    if name == "app":
        from clickstream.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
