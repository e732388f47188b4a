"""``clickstream generate``: synthetic clickstream for demos, tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import typer

from clickstream.cli._common import err_console


def register(app: typer.Typer) -> None:
    @app.command()
    def generate(
        rows: int = typer.Option(..., "--rows", "-n", help="Number of page views."),
        out: Path = typer.Option(..., "--out", "-o", help="Output .csv or .csv.gz file."),
        seed: int = typer.Option(42, "--seed", help="Same seed, same file."),
        bad_fraction: float = typer.Option(
            0.0, "--bad-fraction", help="Share of rows that break a contract rule (0-1)."
        ),
    ) -> None:
        """Write a realistic, deterministic synthetic clickstream CSV."""
        from clickstream.generate import generate as write

        write(out, rows, seed=seed, bad_fraction=bad_fraction)
        err_console.print(f"wrote {rows:,} rows to {out}")
