"""``clickstream package``: build the Spark job artifact (what EMR receives)."""

from __future__ import annotations

from pathlib import Path

import typer

from clickstream.cli._common import err_console


def register(app: typer.Typer) -> None:
    @app.command()
    def package(
        out: Path = typer.Option(Path("dist"), "--out", "-o", help="Output folder."),
    ) -> None:
        """Build clickstream.zip + clickstream_job.py for spark-submit / EMR steps."""
        from clickstream.deploy.package import build_spark_artifact

        archive, launcher = build_spark_artifact(out)
        err_console.print(f"wrote {archive} and {launcher}")
        err_console.print(
            f"run: spark-submit --py-files {archive} {launcher} --input <csv> --lake <lake>"
        )
