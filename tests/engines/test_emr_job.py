"""The EMR step as EMR runs it: spark-submit of the packaged job with an s3:// lake.

The S3 endpoint is a moto server on 127.0.0.1 (the boundary that cannot run here). The input is
local: Spark cannot read s3:// without the hadoop-aws jars, which EMR has (EMRFS) and this
machine does not; the lake is written through the LakeStore from the driver, so it does reach S3.
The driver's Python has boto3 (as the cluster's bootstrap installs) and nothing of this project:
the code comes only from the zip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream.deploy.package import build_spark_artifact
from clickstream.generate import generate
from clickstream.pipeline import EtlOptions, run_etl
from tests.aws.conftest import aws, moto_endpoint  # noqa: F401  (fixtures)
from tests.conftest import lake_rows
from tests.engines.test_spark_deploy import bare_python, spark_submit_job

pytestmark = [pytest.mark.spark, pytest.mark.aws, pytest.mark.slow]

#: What the cluster's bootstrap installs: boto3 and its dependencies, nothing else.
BOTO_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")


def boto_only_path(tmp: Path) -> str:
    import boto3

    site = Path(boto3.__file__).parent.parent
    folder = tmp / "cluster-site"
    folder.mkdir()
    for name in BOTO_PACKAGES:
        (folder / name).symlink_to(site / name)
    return str(folder)


def download(client, bucket: str, prefix: str, to: Path) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            target = to / obj["Key"][len(prefix) :].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, obj["Key"], str(target))


def test_packaged_job_writes_an_s3_lake_like_duckdb(tmp_path: Path, aws) -> None:  # noqa: F811
    aws.create_bucket(Bucket="emr-lake")
    archive, launcher = build_spark_artifact(tmp_path / "dist")
    src = generate(tmp_path / "in" / "raw.csv.gz", 2_000, seed=5, bad_fraction=0.05)
    python = bare_python()
    env = {
        "PYSPARK_PYTHON": python,
        "PYSPARK_DRIVER_PYTHON": python,
        "PYTHONPATH": boto_only_path(tmp_path),
    }
    run_dir = tmp_path / "driver-cwd"
    run_dir.mkdir()
    report = spark_submit_job(archive, launcher, src, "s3://emr-lake/prod", env, cwd=run_dir)
    assert report["lake"] == "s3://emr-lake/prod" and report["rows_read"] == 2_000
    # Nothing landed on the driver's disk (the old bug wrote ./s3:/emr-lake/prod there).
    assert not (run_dir / "s3:").exists() and not any(run_dir.rglob("*.parquet"))
    keys = [o["Key"] for o in aws.list_objects_v2(Bucket="emr-lake")["Contents"]]
    assert f"prod/_runs/{report['run_id']}.json" in keys
    fetched = tmp_path / "fetched"
    download(aws, "emr-lake", "prod", fetched)
    reference = tmp_path / "duck"
    run_etl(EtlOptions(input=str(src), lake=str(reference)))
    assert lake_rows(fetched) == lake_rows(reference)

    def quarantine(lake: Path) -> list[dict]:
        return [
            {k: v for k, v in r.items() if k != "run_id"}
            for r in lake_rows(lake, "clickstream_rejected")
        ]

    assert quarantine(fetched) == quarantine(reference) != []
