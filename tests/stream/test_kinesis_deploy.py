"""deploy/teardown of the Kinesis stream on a moto server: on-demand, encrypted, tagged, granted
to the nodes' role only; --dry-run changes nothing."""

from __future__ import annotations

import json
import uuid

import pytest

from clickstream.deploy.actions import Executor
from clickstream.deploy.config import DeploySettings, names
from clickstream.deploy.kinesis import POLICY_NAME, ensure_stream, remove_stream, stream_name
from tests.aws.conftest import aws, moto_endpoint  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.stream, pytest.mark.aws]


def test_stream_deploy_dry_run_and_teardown(aws):  # noqa: F811
    import boto3

    session = boto3.session.Session()
    s = DeploySettings(project=f"cs{uuid.uuid4().hex[:8]}", tags={"team": "data"})
    iam, kinesis = session.client("iam"), session.client("kinesis")
    role = names(s)["instance_role"]
    iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")

    dry = Executor(session, dry_run=True)
    ensure_stream(dry, s)
    assert [o.status for o in dry.outcomes] == ["would create"]
    assert any("create_stream" in c and "ON_DEMAND" in c for c in dry.calls)
    assert stream_name(s) not in kinesis.list_streams()["StreamNames"]

    ex = Executor(session)
    ensure_stream(ex, s)
    summary = kinesis.describe_stream_summary(StreamName=stream_name(s))["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    assert summary["EncryptionType"] == "KMS"
    tags = kinesis.list_tags_for_stream(StreamName=stream_name(s))["Tags"]
    assert {"Key": "project", "Value": s.project} in tags and {
        "Key": "team",
        "Value": "data",
    } in tags
    policy = iam.get_role_policy(RoleName=role, PolicyName=POLICY_NAME)["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    resources = {r for st in policy["Statement"] for r in st["Resource"]}
    assert resources == {summary["StreamARN"]}  # this stream, nothing else

    again = Executor(session)
    ensure_stream(again, s)
    assert [o.status for o in again.outcomes] == ["exists"]

    gone = Executor(session)
    remove_stream(gone, s)
    assert [o.status for o in gone.outcomes] == ["deleted"]
    assert stream_name(s) not in kinesis.list_streams()["StreamNames"]
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == []
