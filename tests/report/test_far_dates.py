"""Periods at the ends of the calendar: no overflow, no previous period before year 1, and a
daily series as long as the data, not as the period."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from clickstream.errors import LakeError
from clickstream.report.period import Period, choose_period
from tests.report import oracle
from tests.report.conftest import make_lake
from tests.report.test_cli import cli, one_line_error


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lake(tmp_path_factory.mktemp("report-far"), 2_000)


def chart_data(out: Path) -> dict:
    block = out.read_text().split('id="report-data">', 1)[1].split("</script>", 1)[0]
    return json.loads(block)


def test_previous_period_before_year_one_is_none():
    assert Period(date(1, 1, 1), date(1, 1, 1)).previous is None
    assert Period(date(1, 1, 2), date(1, 1, 2)).previous == Period(date(1, 1, 1), date(1, 1, 1))
    assert Period(date(1, 1, 2), date(1, 1, 3)).previous is None
    assert Period(date(1, 1, 1), date(9999, 12, 31)).previous is None
    assert Period(date(2024, 1, 1), date(5000, 1, 1)).previous is None


def test_default_start_near_year_one_is_clamped():
    d0, d1 = date(1, 1, 1), date(1, 1, 5)
    assert choose_period(None, None, d0, d1) == Period(d0, d1)
    with pytest.raises(LakeError, match="no page views between 0001-01-01 and 0001-01-05"):
        choose_period(None, date(1, 1, 5), date(2024, 1, 1), date(2024, 12, 31))


@pytest.mark.parametrize(
    ("args", "compared"),
    [
        (["--from", "0001-01-01", "--to", "9999-12-31"], False),
        (["--from", "0001-01-01"], False),
        (["--from", "0002-01-01", "--to", "2025-01-01"], False),
        (["--from", "2024-01-01", "--to", "5000-01-01"], False),
        (["--from", "1500-01-01"], True),  # the previous period starts in 0975
    ],
)
def test_far_periods_report_with_a_series_as_long_as_the_data(lake, tmp_path, args, compared):
    out = tmp_path / "r.html"
    proc = cli("--lake", str(lake), "--out", str(out), *args)
    assert proc.returncode == 0, proc.stderr
    first, last = oracle.lake_days(lake)
    x = chart_data(out)["charts"]["timeseries"]["data"][0]["x"]
    assert x[0] == first.isoformat() and x[-1] == last.isoformat()
    assert len(x) == (last - first).days + 1
    page = out.read_text()
    assert ("no previous period to compare with" not in page) == compared
    assert out.stat().st_size < 3 * 1024 * 1024


def test_far_end_with_data_inside_keeps_the_comparison(lake, tmp_path):
    out = tmp_path / "r.html"
    proc = cli("--lake", str(lake), "--out", str(out), "--from", "2024-06-01", "--to", "2030-12-31")
    assert proc.returncode == 0, proc.stderr
    assert "no previous period" not in out.read_text()
    x = chart_data(out)["charts"]["timeseries"]["data"][0]["x"]
    assert x[0] == "2024-06-01" and x[-1] == oracle.lake_days(lake)[1].isoformat()


def test_to_near_year_one_says_there_is_no_data(lake, tmp_path):
    first, last = oracle.lake_days(lake)
    proc = cli("--lake", str(lake), "--out", str(tmp_path / "r.html"), "--to", "0001-01-05")
    one_line_error(proc, 1, "no page views between 0001-01-01 and 0001-01-05", str(first))
