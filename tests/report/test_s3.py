"""The report over an S3 lake (moto server on 127.0.0.1): same numbers as the same data locally."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from clickstream.generate import generate
from clickstream.pipeline import EtlOptions, run_etl
from clickstream.report import ReportOptions, build_report
from tests.aws.conftest import FAKE_SECRET, aws, moto_endpoint  # noqa: F401

pytestmark = pytest.mark.aws

KPI = re.compile(r'data-kpi="(\w+)" data-value="([^"]*)"')


def kpis(html: str) -> dict[str, str]:
    return dict(KPI.findall(html))


def test_report_on_an_s3_lake_equals_the_local_one(aws, tmp_path: Path) -> None:  # noqa: F811
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    aws.create_bucket(Bucket=bucket)
    src = generate(tmp_path / "in.csv", 4_000, seed=5, bad_fraction=0.05)
    run_etl(EtlOptions(input=str(src), lake=f"s3://{bucket}/prod"))
    run_etl(EtlOptions(input=str(src), lake=str(tmp_path / "local")))
    on_s3 = build_report(ReportOptions(f"s3://{bucket}/prod", tmp_path / "s3.html"))
    local = build_report(ReportOptions(str(tmp_path / "local"), tmp_path / "local.html"))
    assert on_s3.period == local.period
    s3_html, local_html = on_s3.path.read_text(), local.path.read_text()
    on_s3_kpis, local_kpis = kpis(s3_html), kpis(local_html)
    assert on_s3_kpis.keys() == local_kpis.keys() and len(on_s3_kpis) == 6
    for key, value in on_s3_kpis.items():
        # Parallel float sums may differ in the last digit.
        assert float(value) == pytest.approx(float(local_kpis[key]), rel=1e-12), key
    assert f"s3://{bucket}/prod" in s3_html
    assert FAKE_SECRET not in s3_html
    # The run reports come from the S3 lake's _runs/ through the lake store.
    assert s3_html.count('<td class="text"') > 0 and "duckdb" in s3_html
