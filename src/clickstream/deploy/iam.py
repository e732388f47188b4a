"""Least-privilege IAM: the EMR service role and the nodes' role and instance profile."""

from __future__ import annotations

import json
from typing import Any

from clickstream import s3
from clickstream.deploy.actions import Executor
from clickstream.deploy.config import DeploySettings, names, tags

EMR_SERVICE_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"
#: AmazonEMRServicePolicy_v2 lets the service role pass only EMR_EC2_DefaultRole; our node role
#: needs its own grant, or EMR cannot launch a single instance.
PASS_ROLE_POLICY = "pass-node-role"


def pass_role_policy(node_role_arn: str) -> dict[str, Any]:
    """The service role may pass exactly the node role, and only to EC2."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PassNodeRoleToEc2",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": [node_role_arn],
                "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            }
        ],
    }


def _trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def instance_policy(s: DeploySettings) -> dict[str, Any]:
    """What the cluster's nodes may do: read the input and the job, write logs and the lake."""
    in_bucket, in_prefix = s3.split(s.input)
    lake_prefix = s.lake_prefix.strip("/")
    arn = "arn:aws:s3:::"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListProjectBuckets",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": sorted(
                    {f"{arn}{in_bucket}", f"{arn}{s.code_bucket}", f"{arn}{s.lake_bucket}"}
                ),
            },
            {
                "Sid": "ReadInput",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"{arn}{in_bucket}/{in_prefix}*"],
            },
            {
                "Sid": "ReadJob",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"{arn}{s.code_bucket}/{names(s)['job_prefix']}/*"],
            },
            {
                "Sid": "WriteLogs",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [f"{arn}{s.code_bucket}/{names(s)['log_prefix']}*"],
            },
            {
                "Sid": "ReadWriteLake",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [f"{arn}{s.lake_bucket}/{lake_prefix}/*"],
            },
        ],
    }


def _ensure_role(ex: Executor, s: DeploySettings, name: str, service: str) -> bool:
    found = ex.exists("iam", "get_role", ("NoSuchEntity",), RoleName=name)
    if found is None:
        ex.change(
            "iam",
            "create_role",
            RoleName=name,
            AssumeRolePolicyDocument=_trust(service),
            Tags=[{"Key": k, "Value": v} for k, v in tags(s).items()],
        )
    return found is None


def ensure_iam(ex: Executor, s: DeploySettings) -> None:
    n = names(s)
    if s.runtime == "emr-serverless":
        # One role: the job's, trusted by EMR Serverless, with the same S3 scope as EC2 nodes.
        created = _ensure_role(ex, s, n["instance_role"], "emr-serverless.amazonaws.com")
        ex.change(
            "iam",
            "put_role_policy",
            RoleName=n["instance_role"],
            PolicyName="lake-access",
            PolicyDocument=json.dumps(instance_policy(s)),
        )
        ex.record(f"iam role {n['instance_role']}", created, "job runs: project buckets only")
        return
    created = _ensure_role(ex, s, n["service_role"], "elasticmapreduce.amazonaws.com")
    ex.change("iam", "attach_role_policy", RoleName=n["service_role"], PolicyArn=EMR_SERVICE_POLICY)
    account = ex.read("sts", "get_caller_identity")["Account"]
    node_arn = f"arn:aws:iam::{account}:role/{n['instance_role']}"
    ex.change(
        "iam",
        "put_role_policy",
        RoleName=n["service_role"],
        PolicyName=PASS_ROLE_POLICY,
        PolicyDocument=json.dumps(pass_role_policy(node_arn)),
    )
    ex.record(
        f"iam role {n['service_role']}",
        created,
        "EMR service role (AmazonEMRServicePolicy_v2 + PassRole for the node role)",
    )
    created = _ensure_role(ex, s, n["instance_role"], "ec2.amazonaws.com")
    ex.change(
        "iam",
        "put_role_policy",
        RoleName=n["instance_role"],
        PolicyName="lake-access",
        PolicyDocument=json.dumps(instance_policy(s)),
    )
    ex.record(f"iam role {n['instance_role']}", created, "cluster nodes: project buckets only")
    profile = ex.exists(
        "iam", "get_instance_profile", ("NoSuchEntity",), InstanceProfileName=n["instance_profile"]
    )
    if profile is None:
        ex.change("iam", "create_instance_profile", InstanceProfileName=n["instance_profile"])
    roles = [r["RoleName"] for r in (profile or {}).get("InstanceProfile", {}).get("Roles", [])]
    if n["instance_role"] not in roles:
        ex.change(
            "iam",
            "add_role_to_instance_profile",
            InstanceProfileName=n["instance_profile"],
            RoleName=n["instance_role"],
        )
    ex.record(f"iam instance profile {n['instance_profile']}", profile is None)
