"""Scheduled incremental runs: an EventBridge Scheduler schedule that starts an EMR Serverless
job run (universal target), with a role allowed exactly that call and passing exactly the job's
role. The ETL is idempotent, so each run ingests only files it has not seen.
"""

from __future__ import annotations

import json
from typing import Any

from clickstream.deploy.actions import Executor
from clickstream.deploy.config import DeploySettings, tags

#: EventBridge Scheduler's universal target for EMR Serverless StartJobRun.
TARGET_ARN = "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"
POLICY_NAME = "start-job-run"
GONE = ("ResourceNotFoundException",)


def schedule_name(s: DeploySettings) -> str:
    return f"{s.project}-etl"


def role_name(s: DeploySettings) -> str:
    return f"{s.project}-scheduler"


def scheduler_policy(app_arn: str, job_role_arn: str) -> dict[str, Any]:
    """StartJobRun on the one application, and passing the one job role to EMR Serverless."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "StartTheEtl",
                "Effect": "Allow",
                "Action": ["emr-serverless:StartJobRun"],
                "Resource": [app_arn],
            },
            {
                "Sid": "PassTheJobRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": [job_role_arn],
                "Condition": {
                    "StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}
                },
            },
        ],
    }


def _trust(account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "scheduler.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    # Only schedules of this account may assume it (confused deputy).
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                }
            ],
        }
    )


def ensure_schedule(ex: Executor, s: DeploySettings, start: dict[str, Any] | None) -> None:
    name = schedule_name(s)
    found = ex.exists("scheduler", "get_schedule", GONE, Name=name)
    if s.schedule.lower() == "none":
        if found is not None:
            ex.change("scheduler", "delete_schedule", gone=GONE, Name=name)
        ex.record_deleted(f"schedule {name}", found is not None, "schedule = none: runs once")
        return
    if s.runtime != "emr-serverless" or start is None:
        ex.outcomes.append(
            type(ex.outcomes[0])(
                f"schedule {name}", "skipped", "scheduled runs need emr-serverless"
            )
        )
        return
    account = ex.read("sts", "get_caller_identity")["Account"]
    app_arn = f"arn:aws:emr-serverless:{s.region}:{account}:/applications/{start['applicationId']}"
    role = role_name(s)
    role_found = ex.exists("iam", "get_role", ("NoSuchEntity",), RoleName=role)
    if role_found is None:
        ex.change(
            "iam",
            "create_role",
            RoleName=role,
            AssumeRolePolicyDocument=_trust(account),
            Tags=[{"Key": k, "Value": v} for k, v in tags(s).items()],
        )
    ex.change(
        "iam",
        "put_role_policy",
        RoleName=role,
        PolicyName=POLICY_NAME,
        PolicyDocument=json.dumps(scheduler_policy(app_arn, start["executionRoleArn"])),
    )
    ex.record(f"iam role {role}", role_found is None, "scheduler: StartJobRun on the ETL only")
    # Tags would need emr-serverless:TagResource too; the schedule's runs go untagged.
    request = {k: v for k, v in start.items() if k != "tags"}
    request["clientToken"] = "<aws.scheduler.execution-id>"  # one run per tick, retries included
    params: dict[str, Any] = {
        "Name": name,
        "ScheduleExpression": s.schedule,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": TARGET_ARN,
            "RoleArn": f"arn:aws:iam::{account}:role/{role}",
            "Input": json.dumps(request, sort_keys=True),
        },
    }
    op = "create_schedule" if found is None else "update_schedule"
    ex.change("scheduler", op, **params)
    ex.record(f"schedule {name}", found is None, s.schedule)


def remove_schedule(ex: Executor, s: DeploySettings) -> None:
    from clickstream.deploy.teardown import remove_role

    name = schedule_name(s)
    found = ex.exists("scheduler", "get_schedule", GONE, Name=name)
    if found is not None:
        ex.change("scheduler", "delete_schedule", gone=GONE, Name=name)
    ex.record_deleted(f"schedule {name}", found is not None)
    remove_role(ex, role_name(s))


def schedule_status(ex: Executor, s: DeploySettings) -> str:
    found = ex.exists("scheduler", "get_schedule", GONE, Name=schedule_name(s))
    if found is None:
        return "schedule: none (runs only when deployed)"
    return f"schedule {found['Name']}: {found['ScheduleExpression']} ({found.get('State', '')})"
