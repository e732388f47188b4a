"""A real S3-compatible HTTP endpoint for the suite: moto in server mode on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

#: Distinctive fake credentials: tests grep every output for them.
FAKE_KEY_ID = "AKIACLICKSTREAMTEST1"
FAKE_SECRET = "fake-secret-do-not-leak-7f3a9c"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    # AWS-managed policies (AmazonEMRServicePolicy_v2) exist in moto only when asked for.
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str):
    """Point boto3 and DuckDB at the local endpoint with fake credentials; returns a client."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(var, None)
    os.environ.update(
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",
        AWS_ACCESS_KEY_ID=FAKE_KEY_ID,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=moto_endpoint,
    )
    from clickstream import s3

    return s3.client()
