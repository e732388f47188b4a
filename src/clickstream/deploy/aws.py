"""One-command deployment: buckets, job artifact, least-privilege IAM, Glue/Athena, an EMR run.

Every step checks what exists first and creates only what is missing, so running ``deploy``
twice creates nothing the second time. The cluster runs the Spark ETL as a step and terminates
itself when the step ends, on failure too (and after ``idle_timeout_seconds`` as a backstop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clickstream.deploy.actions import Executor
from clickstream.deploy.buckets import ensure_bucket
from clickstream.deploy.config import DeploySettings
from clickstream.deploy.emr import check_network_tags, ensure_cluster, newest_release
from clickstream.deploy.glue import check_glue, ensure_glue
from clickstream.deploy.iam import ensure_iam
from clickstream.deploy.jobs import upload_job
from clickstream.deploy.kinesis import ensure_stream
from clickstream.deploy.schedule import ensure_schedule
from clickstream.deploy.serverless import ensure_run
from clickstream.errors import ConfigError

Context = dict[str, Any]


def _buckets(ex: Executor, s: DeploySettings, ctx: Context) -> None:
    ensure_bucket(ex, s, s.code_bucket)
    ensure_bucket(ex, s, s.lake_bucket)


def _job(ex: Executor, s: DeploySettings, ctx: Context) -> None:
    ctx["job"] = upload_job(ex, s)


def _run(ex: Executor, s: DeploySettings, ctx: Context) -> None:
    if s.runtime == "emr-serverless":
        job_zip, launcher, _ = ctx["job"]
        release = s.release_label or newest_release(ex)
        ctx["run"], ctx["start"] = ensure_run(ex, s, job_zip, launcher, release)
    else:
        ctx["run"], ctx["start"] = ensure_cluster(ex, s, *ctx["job"])


#: The deploy, in order; each step needs only the ones before it (teardown copes with any prefix).
STEPS: list[Callable[[Executor, DeploySettings, Context], None]] = [
    _buckets,
    _job,
    lambda ex, s, ctx: ensure_iam(ex, s),
    lambda ex, s, ctx: ensure_glue(ex, s),
    lambda ex, s, ctx: ensure_stream(ex, s),
    _run,
    lambda ex, s, ctx: ensure_schedule(ex, s, ctx.get("start")),
]


def deploy(ex: Executor, s: DeploySettings) -> str | None:
    if not s.input:
        raise ConfigError(
            "deploy needs the raw input: --input s3://bucket/prefix/ "
            "(or [deploy] input in clickstream.toml)"
        )
    # Before anything is created: a refusal must leave the account as it was.
    check_glue(ex, s)
    if s.runtime == "emr-ec2":
        check_network_tags(ex, s)
    ctx: Context = {}
    for step in STEPS:
        step(ex, s, ctx)
    run: str | None = ctx.get("run")
    return run
