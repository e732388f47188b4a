"""The Spark job artifact and the node bootstrap, uploaded by content hash."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from clickstream.deploy.actions import Executor
from clickstream.deploy.config import DeploySettings, names

#: EMR 7 nodes run Python 3.9, which the job supports (tests/aws/test_py39.py); the driver
#: also needs boto3 (the s3:// lake) and numpy (the input census). pip on 3.9 picks the newest
#: releases that support 3.9; already installed ones are kept.
BOOTSTRAP = """#!/bin/bash
set -euo pipefail
python3 -m pip --version >/dev/null 2>&1 || sudo dnf install -y -q python3-pip
sudo python3 -m pip install --quiet "boto3>=1.35.2" "numpy>=1.20"
"""


def upload_job(ex: Executor, s: DeploySettings) -> tuple[str, str, str]:
    """Upload the Spark job artifact and node bootstrap (skipped when already there).

    The keys, and the prefixes EMR and Athena will write under, go into the deploy manifest
    first: in a bucket the user supplied, teardown deletes those and nothing else."""
    from clickstream.deploy.manifest import remember
    from clickstream.deploy.package import build_spark_artifact

    n = names(s)
    with tempfile.TemporaryDirectory() as tmp:
        bootstrap = Path(tmp) / "bootstrap.sh"
        bootstrap.write_text(BOOTSTRAP)
        artifacts = []
        for path in (*build_spark_artifact(Path(tmp)), bootstrap):
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()[:16]
            artifacts.append((f"{n['job_prefix']}/{digest}/{path.name}", data))
        remember(
            ex,
            s,
            keys=tuple(key for key, _ in artifacts),
            prefixes=(n["log_prefix"], n["athena_prefix"]),
        )
        uris = []
        for key, data in artifacts:
            found = (
                ex.exists(
                    "s3",
                    "head_object",
                    ("404", "NoSuchKey", "NotFound"),
                    Bucket=s.code_bucket,
                    Key=key,
                )
                if not ex.dry_run
                else None
            )
            if found is None:
                ex.change("s3", "put_object", Bucket=s.code_bucket, Key=key, Body=data)
            uri = f"s3://{s.code_bucket}/{key}"
            ex.record(uri, created=found is None, detail="Spark job")
            uris.append(uri)
    return uris[0], uris[1], uris[2]
