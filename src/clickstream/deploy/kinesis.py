"""The Kinesis data stream for ``clickstream stream`` on AWS: on-demand, encrypted, tagged.

Only the cluster nodes' role is granted the stream, and only this stream (an inline policy next
to its lake policy): ``stream publish --to kinesis://<project>-events`` and ``stream stats --from
kinesis://<project>-events`` run there (or anywhere with credentials granting the same).
"""

from __future__ import annotations

import json
from typing import Any

from clickstream.deploy.actions import Executor
from clickstream.deploy.config import DeploySettings, names, tags

POLICY_NAME = "stream-access"
KMS_KEY = "alias/aws/kinesis"


def stream_name(s: DeploySettings) -> str:
    return f"{s.project}-events"


def stream_policy(arn: str) -> dict[str, Any]:
    """Publish and consume this one stream, nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublishAndConsumeTheStream",
                "Effect": "Allow",
                "Action": [
                    "kinesis:DescribeStreamSummary",
                    "kinesis:ListShards",
                    "kinesis:GetShardIterator",
                    "kinesis:GetRecords",
                    "kinesis:PutRecords",
                ],
                "Resource": [arn],
            }
        ],
    }


def _arn(ex: Executor, s: DeploySettings) -> str:
    account = ex.read("sts", "get_caller_identity")["Account"]
    region = ex.client("kinesis").meta.region_name
    return f"arn:aws:kinesis:{region}:{account}:stream/{stream_name(s)}"


def ensure_stream(ex: Executor, s: DeploySettings) -> None:
    """Create the stream when missing (on-demand capacity), encrypt it, tag it, grant it."""
    name = stream_name(s)
    found = ex.exists(
        "kinesis", "describe_stream_summary", ("ResourceNotFoundException",), StreamName=name
    )
    if found is None:
        ex.change(
            "kinesis",
            "create_stream",
            StreamName=name,
            StreamModeDetails={"StreamMode": "ON_DEMAND"},
        )
        if not ex.dry_run:  # encryption needs an ACTIVE stream
            ex.client("kinesis").get_waiter("stream_exists").wait(
                StreamName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
            )
    summary = (found or {}).get("StreamDescriptionSummary", {})
    if summary.get("EncryptionType") != "KMS":
        ex.change(
            "kinesis",
            "start_stream_encryption",
            StreamName=name,
            EncryptionType="KMS",
            KeyId=KMS_KEY,
        )
    ex.change("kinesis", "add_tags_to_stream", StreamName=name, Tags=tags(s))
    ex.change(
        "iam",
        "put_role_policy",
        RoleName=names(s)["instance_role"],
        PolicyName=POLICY_NAME,
        PolicyDocument=json.dumps(stream_policy(_arn(ex, s))),
    )
    ex.record(
        f"kinesis stream {name}",
        found is None,
        f"on-demand, encrypted ({KMS_KEY}), tagged; {names(s)['instance_role']} may use it",
    )


def remove_stream(ex: Executor, s: DeploySettings) -> None:
    """Revoke the grant and delete the stream (before the roles go: IAM refuses to delete a
    role that still has inline policies)."""
    name = stream_name(s)
    role = names(s)["instance_role"]
    if ex.exists(
        "iam", "get_role_policy", ("NoSuchEntity",), RoleName=role, PolicyName=POLICY_NAME
    ):
        ex.change("iam", "delete_role_policy", RoleName=role, PolicyName=POLICY_NAME)
    found = ex.exists(
        "kinesis", "describe_stream_summary", ("ResourceNotFoundException",), StreamName=name
    )
    if found is not None:
        ex.change("kinesis", "delete_stream", StreamName=name, EnforceConsumerDeletion=True)
    ex.record_deleted(f"kinesis stream {name}", found is not None)
