"""EMR Serverless (the default runtime): an application that starts on demand and stops when
idle, an execution role with the nodes' least-privilege S3 scope, and job runs of the packaged
Spark job. No VPC, no instance profile, no cluster lifecycle.

Python: EMR 7 images run Python 3.9; the job's import closure is 3.9 code (checked by
``tests/aws/test_py39.py``: vermin, imports and a spark-submit under a real 3.9) and its
pure-Python dependency (sqlglot) rides in the ``--py-files`` zip.
"""

from __future__ import annotations

import time
from typing import Any

from clickstream.deploy.actions import Executor, Outcome
from clickstream.deploy.config import DeploySettings, names, tags
from clickstream.errors import DeployError

#: Job runs still holding (or about to hold) capacity.
ACTIVE_RUN_STATES = ["SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED"]
LIVE_APP_STATES = ["CREATING", "CREATED", "STARTING", "STARTED", "STOPPING", "STOPPED"]
#: Bounded wait for an application to stop before it can be deleted: 5 s polls, 10 minutes.
STOP_WAIT_SECONDS, STOP_POLL_SECONDS = 600, 5
SERVICE = "emr-serverless"
#: moto (not AWS) answers ListJobRuns for an application without runs with this.
NO_RUNS = ("ResourceNotFoundException",)


def application(ex: Executor, s: DeploySettings) -> dict[str, Any] | None:
    """The project's live application (every page of the listing), or None."""
    apps = ex.pages(SERVICE, "list_applications", "applications", states=LIVE_APP_STATES)
    mine = [a for a in apps if a["name"] == names(s)["cluster"]]
    return mine[0] if mine else None


def execution_role_arn(ex: Executor, s: DeploySettings) -> str:
    account = ex.read("sts", "get_caller_identity")["Account"]
    return f"arn:aws:iam::{account}:role/{names(s)['instance_role']}"


def ensure_application(ex: Executor, s: DeploySettings, release: str) -> str | None:
    found = application(ex, s)
    if found is not None:
        ex.record(f"emr-serverless application {found['id']}", False, found["state"])
        return str(found["id"])
    response = ex.change(
        SERVICE,
        "create_application",
        name=names(s)["cluster"],
        releaseLabel=release,
        type="SPARK",
        # Starts with a job run, stops after 15 idle minutes: nothing billed between runs.
        autoStartConfiguration={"enabled": True},
        autoStopConfiguration={"enabled": True, "idleTimeoutMinutes": 15},
        maximumCapacity={"cpu": s.serverless_max_cpu, "memory": s.serverless_max_memory},
        tags=tags(s),
    )
    app_id = response["applicationId"] if response else None
    ex.record(
        f"emr-serverless application {app_id or names(s)['cluster']}",
        True,
        f"{release}, SPARK, auto start/stop, at most {s.serverless_max_cpu}",
    )
    return app_id


def job_driver(s: DeploySettings, job_zip: str, launcher: str) -> dict[str, Any]:
    return {
        "sparkSubmit": {
            "entryPoint": launcher,
            "entryPointArguments": ["--input", s.input, "--lake", s.lake_uri()],
            "sparkSubmitParameters": (
                f"--py-files {job_zip} --conf spark.sql.session.timeZone=UTC"
            ),
        }
    }


def logs_uri(s: DeploySettings) -> str:
    return f"s3://{s.code_bucket}/{names(s)['log_prefix']}serverless/"


def start_params(
    s: DeploySettings, app_id: str, role_arn: str, job_zip: str, launcher: str
) -> dict[str, Any]:
    """StartJobRun's parameters: deploy uses them now and the schedule on every tick."""
    return {
        "applicationId": app_id,
        "executionRoleArn": role_arn,
        "name": "clickstream-etl",
        "jobDriver": job_driver(s, job_zip, launcher),
        "configurationOverrides": {
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": logs_uri(s)}}
        },
        "executionTimeoutMinutes": 180,
        "tags": tags(s),
    }


def ensure_run(
    ex: Executor, s: DeploySettings, job_zip: str, launcher: str, release: str
) -> tuple[str | None, dict[str, Any]]:
    """The application, and a job run unless one is already active. Returns the application
    id and the StartJobRun parameters (for the schedule)."""
    app_id = ensure_application(ex, s, release)
    params = start_params(
        s, app_id or "<new application>", execution_role_arn(ex, s), job_zip, launcher
    )
    if app_id is None:  # dry run of a first deploy
        ex.change(SERVICE, "start_job_run", **params)
        return None, params
    active = ex.pages(
        SERVICE,
        "list_job_runs",
        "jobRuns",
        gone=NO_RUNS,
        applicationId=app_id,
        states=ACTIVE_RUN_STATES,
    )
    if active:
        ex.record(f"emr-serverless job run {active[0]['id']}", False, active[0]["state"])
        return app_id, params
    run = ex.change(SERVICE, "start_job_run", **params)
    run_id = run["jobRunId"] if run else "(new)"
    ex.outcomes.append(Outcome(f"emr-serverless job run {run_id}", "started", logs_uri(s)))
    return app_id, params


def remove_application(ex: Executor, s: DeploySettings) -> None:
    """Cancel active runs, stop the application (waiting, bounded), delete it."""
    found = application(ex, s)
    if found is not None:
        app_id = found["id"]
        for run in ex.pages(
            SERVICE,
            "list_job_runs",
            "jobRuns",
            gone=NO_RUNS,
            applicationId=app_id,
            states=ACTIVE_RUN_STATES,
        ):
            ex.change(
                SERVICE,
                "cancel_job_run",
                gone=("ResourceNotFoundException",),
                applicationId=app_id,
                jobRunId=run["id"],
            )
        if found["state"] not in ("CREATED", "STOPPED"):
            ex.change(
                SERVICE,
                "stop_application",
                gone=("ResourceNotFoundException",),
                applicationId=app_id,
            )
            if not ex.dry_run:
                _wait_stopped(ex, app_id)
        ex.change(
            SERVICE, "delete_application", gone=("ResourceNotFoundException",), applicationId=app_id
        )
    ex.record_deleted(
        f"emr-serverless application {names(s)['cluster']}",
        found is not None,
        found["id"] if found else "",
    )


def _wait_stopped(ex: Executor, app_id: str) -> None:
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while True:
        state = ex.read(SERVICE, "get_application", applicationId=app_id)["application"]["state"]
        if state in ("CREATED", "STOPPED", "TERMINATED"):
            return
        if time.monotonic() > deadline:
            raise DeployError(
                f"emr-serverless application {app_id} still {state} after "
                f"{STOP_WAIT_SECONDS} s; run teardown again later"
            )
        time.sleep(STOP_POLL_SECONDS)


def application_status(ex: Executor, s: DeploySettings) -> dict[str, Any]:
    found = application(ex, s)
    if found is None:
        return {}
    runs = ex.exists(SERVICE, "list_job_runs", NO_RUNS, applicationId=found["id"], maxResults=5)
    return {
        "id": found["id"],
        "state": found["state"],
        "release": found.get("releaseLabel", ""),
        "logs": logs_uri(s),
        "runs": [
            {
                "id": r["id"],
                "state": r["state"],
                "created": str(r.get("createdAt", "")),
                "reason": r.get("stateDetails", ""),
            }
            for r in (runs or {}).get("jobRuns", [])
        ],
    }
