"""Values of hundreds of KB (URL paths, utm values, browser names) keep the report small and the
layout intact: cells and labels are cut, with a bounded tooltip."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream.pipeline import EtlOptions, run_etl
from clickstream.report import ReportOptions, build_report
from clickstream.report.dashboard import CELL_CHARS, FULL_CHARS, Column, table
from tests.conftest import write_csv
from tests.report.conftest import MARCH_1

#: About 300 KB per value, different per row (so no table collapses them into one).
LONG = 300_000


def _long(tag: str, i: int) -> str:
    return f"{tag}{i}-" + "x" * LONG


@pytest.fixture(scope="module")
def long_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report-long")
    lines = []
    for i in range(24):
        url = (
            f"https://www.example.com/{_long('p', i % 12)}"
            f"?utm_source={_long('s', i % 12)}&utm_medium={_long('m', i % 12)}"
            f"&utm_campaign={_long('c', i % 12)}"
        )
        time = MARCH_1 + (i % 6) * 86_400 + i * 60
        fields = [f"user-{i}", url, str(time), _long("b", i % 12), _long("o", i % 12), "800x600"]
        lines.append(",".join(fields))
    src = write_csv(root / "in" / "long.csv", lines)
    lake = root / "lake"
    run_etl(EtlOptions(input=str(src), lake=str(lake), full_refresh=True))
    return lake


def test_cells_are_cut_with_a_bounded_tooltip():
    long = "y" * 10_000
    row = table("t", "T", [{"k": long}, {"k": "short"}], [Column("k", "K")]).rows
    assert row[0][0].text == "y" * (CELL_CHARS - 1) + "…"
    assert row[0][0].full == "y" * (FULL_CHARS - 1) + "…"
    assert row[1][0].text == "short" and row[1][0].full == ""


def test_huge_values_give_a_report_of_a_few_mb(long_lake, tmp_path):
    out = tmp_path / "r.html"
    build_report(ReportOptions(lake=str(long_lake), out=out))
    size = out.stat().st_size
    assert size < 2 * 1024 * 1024, size
    page = out.read_text()
    assert "x" * (FULL_CHARS + 10) not in page
    for tag in ("p1-", "s1-", "b1-", "o1-"):
        assert tag + "x" * 100 in page, tag  # the start of every value is still shown


@pytest.mark.browser
def test_long_unbroken_values_do_not_stretch_the_page(long_lake, tmp_path, open_report):
    out = tmp_path / "r.html"
    build_report(ReportOptions(lake=str(long_lake), out=out))
    visit = open_report(out)
    width = visit.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, width
    tooltip = visit.page.evaluate(
        "() => document.querySelector('#top_pages td span.v[title]').title.length"
    )
    assert tooltip == FULL_CHARS
    assert visit.requests == [] and visit.console_errors == []
