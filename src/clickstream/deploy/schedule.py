"""Scheduled incremental runs: an EventBridge Scheduler schedule whose universal target makes
the one call that starts the ETL (EMR Serverless StartJobRun, or EMR RunJobFlow of the same
self-terminating cluster ``deploy`` starts), with a role allowed exactly that call and passing
exactly the roles it needs. The ETL is idempotent, so each run ingests only files it has not seen.
"""

from __future__ import annotations

import json
from typing import Any

from clickstream.deploy.actions import Executor
from clickstream.deploy.config import DeploySettings, names, tags

#: EventBridge Scheduler's universal target for EMR Serverless StartJobRun.
TARGET_ARN = "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"
#: ...and for EMR RunJobFlow (emr-ec2: a new cluster per tick, ending after its step).
EC2_TARGET_ARN = "arn:aws:scheduler:::aws-sdk:emr:runJobFlow"
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


def ec2_scheduler_policy(
    s: DeploySettings, service_role_arn: str, node_role_arn: str
) -> dict[str, Any]:
    """RunJobFlow only for clusters tagged as this project's, and passing the two roles it names
    (the service role to EMR, the node role to EC2, as AWS's EMR policies scope them)."""
    project_tag = {"StringEquals": {"aws:RequestTag/project": s.project}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "StartTheEtlCluster",
                "Effect": "Allow",
                # AddTags: tags given to RunJobFlow are applied on create.
                "Action": ["elasticmapreduce:RunJobFlow", "elasticmapreduce:AddTags"],
                "Resource": ["*"],  # the cluster's ARN does not exist before the call
                "Condition": project_tag,
            },
            {
                "Sid": "PassTheServiceRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": [service_role_arn],
                "Condition": {
                    "StringEquals": {"iam:PassedToService": "elasticmapreduce.amazonaws.com"}
                },
            },
            {
                "Sid": "PassTheNodeRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": [node_role_arn],
                "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
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
    if start is None:  # nothing to start: the run step did not happen
        ex.record_deleted(f"schedule {name}", False, "no run to schedule")
        return
    account = ex.read("sts", "get_caller_identity")["Account"]
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
    if s.runtime == "emr-ec2":
        iam_arn = f"arn:aws:iam::{account}:role/"
        policy = ec2_scheduler_policy(
            s, iam_arn + start["ServiceRole"], iam_arn + names(s)["instance_role"]
        )
        target, request, what = EC2_TARGET_ARN, dict(start), "RunJobFlow of the ETL cluster"
    else:
        app = start["applicationId"]
        app_arn = f"arn:aws:emr-serverless:{s.region}:{account}:/applications/{app}"
        policy = scheduler_policy(app_arn, start["executionRoleArn"])
        # Tags would need emr-serverless:TagResource too; the schedule's runs go untagged.
        request = {k: v for k, v in start.items() if k != "tags"}
        # One run per tick, the scheduler's own retries included.
        request["clientToken"] = "<aws.scheduler.execution-id>"
        target, what = TARGET_ARN, "StartJobRun on the ETL only"
    ex.change(
        "iam",
        "put_role_policy",
        RoleName=role,
        PolicyName=POLICY_NAME,
        PolicyDocument=json.dumps(policy),
    )
    ex.record(f"iam role {role}", role_found is None, f"scheduler: {what}")
    params: dict[str, Any] = {
        "Name": name,
        "ScheduleExpression": s.schedule,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": target,
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
