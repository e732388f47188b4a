"""S3 inputs meet the same integrity checks as local ones (moto server on 127.0.0.1)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from clickstream import s3
from clickstream.errors import InputError
from clickstream.pipeline import EtlOptions, run_etl
from tests.conftest import HEADER

pytestmark = pytest.mark.aws


def line(i: int) -> str:
    return f"u{i},https://a.com/p{i},{1_706_745_600 + i},Chrome,Linux,1x1"


def test_a_truncated_gzip_on_s3_fails_naming_the_object(aws, tmp_path: Path) -> None:
    aws.create_bucket(Bucket="raw-cut")
    data = gzip.compress(("\n".join([HEADER, *map(line, range(20_000))]) + "\n").encode())
    aws.put_object(Bucket="raw-cut", Key="in/a.csv.gz", Body=data[: len(data) * 6 // 10])
    lake = tmp_path / "lake"
    with pytest.raises(InputError, match=r"s3://raw-cut/in/a\.csv\.gz: truncated gzip"):
        run_etl(EtlOptions(input="s3://raw-cut/in/", lake=str(lake)))
    assert not lake.exists() or not any(lake.rglob("*.parquet"))


def test_a_wide_header_on_s3_is_read_whole(aws, tmp_path: Path) -> None:
    aws.create_bucket(Bucket="raw-wide")
    extra = [f"extra_column_{i}" for i in range(10_000)]
    header = ",".join([*extra, HEADER])
    body = f"{header}\n{','.join(['v'] * 10_000)},{line(1)}\n".encode()
    aws.put_object(Bucket="raw-wide", Key="w.csv.gz", Body=gzip.compress(body))
    report = run_etl(EtlOptions(input="s3://raw-wide/w.csv.gz", lake=str(tmp_path / "lake")))
    assert (report.rows_read, report.rows_written) == (1, 1)


def test_a_missing_object_is_one_line(aws) -> None:
    aws.create_bucket(Bucket="raw-gone")
    with pytest.raises(InputError, match=r"cannot read s3://raw-gone/nope\.csv: NoSuchKey"):
        s3.get_object("s3://raw-gone/nope.csv")
