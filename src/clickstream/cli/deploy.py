"""``clickstream deploy | status | teardown``: the AWS side, from the standard credential chain."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from clickstream.cli._common import err_console, out_console

# Options shared by deploy, status and teardown (typer reads them as metadata only).
REGION = typer.Option(None, "--region", help="AWS region.")
PROJECT = typer.Option(None, "--project", help="Resource name prefix.")
DRY_RUN = typer.Option(False, "--dry-run", help="Print changing calls, make none.")
CONFIG = typer.Option(None, "--config", help="Settings file (default ./clickstream.toml).")


def _executor(config: Path | None, dry_run: bool, **flags: Any) -> tuple[Any, Any]:
    import boto3

    from clickstream.deploy.actions import Executor
    from clickstream.deploy.config import load_settings, resolve_region, with_defaults

    flag_region = flags.pop("region", None)
    settings = load_settings(config, **flags)  # its region: the config file's (or env's)
    chain = boto3.session.Session().region_name  # AWS_REGION / AWS_DEFAULT_REGION / profile
    region = resolve_region(flag_region, settings.region, chain)
    session = boto3.session.Session(region_name=region)
    ex = Executor(session, dry_run=dry_run, region=region)
    account = ex.read("sts", "get_caller_identity")["Account"]
    settings = with_defaults(replace(settings, region=region), account, region)
    return ex, settings


def _print_outcomes(ex: Any) -> None:
    table = Table("resource", "status", "detail", title="dry run" if ex.dry_run else None)
    for o in ex.outcomes:
        table.add_row(o.resource, o.status, o.detail)
    out_console.print(table)
    if ex.dry_run:
        err_console.print(f"dry run: {len(ex.calls)} changing call(s) not made:")
        for call in ex.calls:
            err_console.print(f"  {call[:300]}", highlight=False, soft_wrap=True)


def _print_lake_runs(settings: Any) -> None:
    from clickstream.deploy.runs import describe_run, lake_runs

    # Raises ClickstreamError (a missing bucket, a damaged report): the CLI prints one line.
    runs = lake_runs(settings)
    out_console.print(f"lake {settings.lake_uri()}: " + ("last runs" if runs else "no runs yet"))
    for run in runs:
        out_console.print(describe_run(run), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def deploy(
        input: str = typer.Option(None, "--input", "-i", help="s3:// URI of the raw CSV."),
        region: str = REGION,
        project: str = PROJECT,
        release_label: str = typer.Option(None, "--release-label", help="EMR release."),
        core_instance_count: int = typer.Option(None, "--core-count", help="Core nodes."),
        subnet_id: str = typer.Option(
            None,
            "--subnet-id",
            help="EMR subnet (tagged for EMR managed policies).",
        ),
        runtime: str = typer.Option(None, "--runtime", help="emr-serverless (default) or emr-ec2."),
        schedule: str = typer.Option(
            None, "--schedule", help='Scheduler expression (default "rate(1 day)"); "none".'
        ),
        dry_run: bool = DRY_RUN,
        config: Path = CONFIG,
    ) -> None:
        """Create what is missing (buckets, job, IAM, Glue/Athena) and run the ETL on EMR."""
        from clickstream.deploy.aws import deploy as run_deploy

        ex, settings = _executor(
            config,
            dry_run,
            input=input,
            region=region,
            project=project,
            release_label=release_label,
            core_instance_count=core_instance_count,
            subnet_id=subnet_id,
            runtime=runtime,
            schedule=schedule,
        )
        run_id = run_deploy(ex, settings)
        _print_outcomes(ex)
        if run_id and not dry_run:
            hint = run_id if settings.runtime == "emr-ec2" else ""
            err_console.print(f"follow it with: clickstream status {hint}".rstrip())

    @app.command()
    def status(
        cluster_id: str = typer.Argument(None, help="EMR cluster id (default: the newest)."),
        region: str = REGION,
        project: str = PROJECT,
        config: Path = CONFIG,
    ) -> None:
        """Show the application and its last runs (or the cluster and its steps), the schedule,
        the logs, and the lake's last run reports (rows read, written, rejected)."""
        from clickstream.deploy.emr import cluster_status
        from clickstream.deploy.schedule import schedule_status
        from clickstream.deploy.serverless import application_status

        ex, settings = _executor(config, False, region=region, project=project)
        if settings.runtime == "emr-serverless" and cluster_id is None:
            app = application_status(ex, settings)
            if not app:
                err_console.print(f"no emr-serverless application named {settings.project}-etl")
                raise typer.Exit(1)
            out_console.print(f"application {app['id']}: {app['state']} ({app['release']})")
            out_console.print(f"logs: {app['logs']}")
            out_console.print(schedule_status(ex, settings))
            for run in app["runs"]:
                out_console.print(
                    f"  run {run['id']}: {run['state']}  {run['created']} {run['reason']}".rstrip()
                )
        else:
            info = cluster_status(ex, settings, cluster_id)
            if not info:
                err_console.print(f"no cluster named {settings.project}-etl")
                raise typer.Exit(1)
            line = f"cluster {info['id']}: {info['state']} ({info['release']}) {info['reason']}"
            out_console.print(line.rstrip())
            out_console.print(f"logs: {info['logs']}")
            out_console.print(schedule_status(ex, settings))
            for step in info["steps"]:
                out_console.print(
                    f"  step {step['id']} {step['name']}: {step['state']}  {step['logs']}"
                )
        _print_lake_runs(settings)

    @app.command()
    def teardown(
        delete_data: bool = typer.Option(False, "--delete-data", help="Also delete the lake."),
        yes: bool = typer.Option(False, "--yes", help="Do not ask before deleting data."),
        region: str = REGION,
        project: str = PROJECT,
        dry_run: bool = DRY_RUN,
        config: Path = CONFIG,
    ) -> None:
        """Terminate the project's clusters and remove what deploy created (keeps the lake)."""
        from clickstream.deploy.teardown import teardown as run_teardown

        ex, settings = _executor(config, dry_run, region=region, project=project)
        if delete_data and not dry_run and not yes:
            typer.confirm(f"Delete s3://{settings.lake_bucket} and all lake data?", abort=True)
        run_teardown(ex, settings, delete_data)
        _print_outcomes(ex)
