"""The one place AWS clients are configured: bounded time for every call, errors on one line.

botocore's defaults wait 60 s per read and retry up to 5 times in legacy mode, so a silent
endpoint holds a command for minutes. Here every call gets a connect and a read timeout of
seconds and at most ``MAX_ATTEMPTS`` tries in total (standard mode: throttling and transient
5xx/connection errors are retried with backoff); the error names the endpoint that failed.
"""

from __future__ import annotations

from typing import Any

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
#: Total tries per call, the first included.
MAX_ATTEMPTS = 3


def client_config() -> Any:
    """botocore Config with the bounded timeouts and retries."""
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    )


def describe(err: BaseException) -> str:
    """One line for a botocore error: the AWS code and message, or the transport failure with
    its endpoint (no request ids, signatures or credentials)."""
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        e = response.get("Error", {})
        return f"{e.get('Code', 'error')}: {e.get('Message', '')}".strip().rstrip(":")
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

    endpoint = getattr(err, "kwargs", {}).get("endpoint_url")
    if isinstance(err, ReadTimeoutError):
        return (
            f"no answer from {endpoint} within {READ_TIMEOUT_SECONDS} s ({MAX_ATTEMPTS} attempts)"
        )
    if isinstance(err, (ConnectTimeoutError, EndpointConnectionError)):
        return f"cannot connect to {endpoint} ({MAX_ATTEMPTS} attempts)"
    return str(err).splitlines()[0] if str(err) else type(err).__name__
