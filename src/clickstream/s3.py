"""S3 access: boto3 clients and DuckDB's httpfs, both fed from the standard AWS credential chain.

Credentials are never read from project files, never printed and never logged. An S3-compatible
endpoint (MinIO, a local test server) is chosen with the standard ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3`` variables. boto3 and the extension are imported only when an s3:// path
is used.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clickstream.errors import ConfigError, EndpointError, InputError
from clickstream.sqltext import sql_literal

SCHEME = "s3://"


def is_s3(location: str) -> bool:
    return location.startswith(SCHEME)


def split(uri: str) -> tuple[str, str]:
    """s3://bucket/key -> (bucket, key)."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"not an S3 URI: {uri}")
    return parts.netloc, parts.path.lstrip("/")


def join(*parts: str) -> str:
    return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts))


def endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


@lru_cache(maxsize=4)
def _client(endpoint: str | None) -> Any:
    import boto3

    from clickstream.awsclient import client_config

    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=client_config())


def client() -> Any:
    return _client(endpoint_url())


def error_message(err: BaseException) -> str:
    """A one-line description of a botocore error, without request details."""
    from clickstream.awsclient import describe

    return describe(err)


def list_objects(uri: str) -> list[dict[str, Any]]:
    """Every object under an s3:// prefix (recursive)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split(uri)
    out: list[dict[str, Any]] = []
    try:
        for page in (
            client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        ):
            out.extend(page.get("Contents", []))
    except (BotoCoreError, ClientError) as err:
        raise InputError(f"cannot list {uri}: {error_message(err)}") from err
    return out


def get_object(uri: str, byte_range: str | None = None) -> Any:
    """The streaming body of an S3 object (``byte_range`` like ``bytes=0-65535``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split(uri)
    params = {"Bucket": bucket, "Key": key}
    if byte_range:
        params["Range"] = byte_range
    try:
        return client().get_object(**params)["Body"]
    except (BotoCoreError, ClientError) as err:
        raise InputError(f"cannot read {uri}: {error_message(err)}") from err


#: How DuckDB's httpfs names a request that got no (or no usable) answer.
_HTTPFS_FAILURE = re.compile(
    r"(?P<what>Timeout was reached|Could not connect to server|Couldn't connect to server|"
    r"Connection refused|Failed to connect)[^']*?HTTP (?P<method>[A-Z]+) to '(?P<url>[^']+)'"
)


def duckdb_http_error(err: BaseException) -> EndpointError | None:
    """The one-line error for a DuckDB httpfs request the endpoint never answered (or refused),
    naming the endpoint and the bound; None for any other error (a 403, a bad file...)."""
    from clickstream.awsclient import MAX_ATTEMPTS, READ_TIMEOUT_SECONDS

    found = _HTTPFS_FAILURE.search(str(err))
    if not found:
        return None
    parts = urlsplit(found["url"])
    endpoint = f"{parts.scheme}://{parts.netloc}"
    target = f"{found['method']} {parts.path}"
    if found["what"].startswith("Timeout"):
        return EndpointError(
            endpoint,
            f"no answer from S3 endpoint {endpoint} within {READ_TIMEOUT_SECONDS} s "
            f"({MAX_ATTEMPTS} attempts; DuckDB {target})",
        )
    return EndpointError(
        endpoint,
        f"cannot connect to S3 endpoint {endpoint} ({MAX_ATTEMPTS} attempts; DuckDB {target})",
    )


def httpfs_extension() -> str:
    """The httpfs build installed from PyPI for this DuckDB, loaded by path (never downloaded)."""
    import duckdb

    try:
        import duckdb_extension_httpfs
    except ImportError as err:
        raise ConfigError(
            "S3 needs DuckDB's httpfs extension: pip install "
            f"'duckdb-extension-httpfs=={duckdb.__version__}'"
        ) from err
    folder = (
        Path(list(duckdb_extension_httpfs.__path__)[0]) / "extensions" / f"v{duckdb.__version__}"
    )
    found = sorted(folder.rglob("httpfs.duckdb_extension"))
    if not found:
        raise ConfigError(
            f"no httpfs extension for DuckDB {duckdb.__version__} under {folder}: install "
            f"'duckdb-extension-httpfs=={duckdb.__version__}'"
        )
    return str(found[0])


def configure_duckdb(con: Any) -> None:
    """Load httpfs (installed from PyPI, no download) and give it the chain's credentials."""
    import boto3

    con.execute(f"LOAD {sql_literal(httpfs_extension())}")
    session = boto3.session.Session()
    creds = session.get_credentials()
    options = {"TYPE": "s3", "REGION": session.region_name or "us-east-1"}
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        options.update(KEY_ID=frozen.access_key, SECRET=frozen.secret_key)
        if frozen.token:
            options["SESSION_TOKEN"] = frozen.token
    endpoint = endpoint_url()
    if endpoint:
        parts = urlsplit(endpoint)
        options.update(
            ENDPOINT=parts.netloc,
            URL_STYLE="path",
            USE_SSL="true" if parts.scheme == "https" else "false",
        )
    # Values are quoted as SQL literals, so no value can break the statement (a parser error
    # would echo it, secret included).
    rendered = ", ".join(
        f"{k} {v}" if k in ("TYPE", "USE_SSL") else f"{k} '{v.replace(chr(39), chr(39) * 2)}'"
        for k, v in options.items()
    )
    # A temporary (in-memory) secret: never written to disk, never logged.
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET clickstream_s3 ({rendered})")
    # Bounded time per request, as for boto3 (awsclient): a silent endpoint fails in seconds.
    from clickstream.awsclient import MAX_ATTEMPTS, READ_TIMEOUT_SECONDS

    con.execute(f"SET http_timeout = {READ_TIMEOUT_SECONDS}")
    con.execute(f"SET http_retries = {MAX_ATTEMPTS - 1}")
    con.execute("SET http_retry_backoff = 2")
