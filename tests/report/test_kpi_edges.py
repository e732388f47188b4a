"""KPI cards at the edges: page views whose visits all started before the period."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from clickstream.pipeline import EtlOptions, run_etl
from clickstream.report import ReportOptions, build_report
from tests.conftest import write_csv
from tests.report.conftest import MARCH_1


@pytest.fixture(scope="module")
def overnight_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One visit from 2024-03-01 23:40 to 2024-03-02 00:20 UTC (page views every 20 minutes)."""
    root = tmp_path_factory.mktemp("report-overnight")
    start = MARCH_1 + 86_400 - 20 * 60
    lines = [
        f"u1,https://www.example.com/p{i},{start + i * 1200},Firefox,Linux,1920x1080"
        for i in range(3)
    ]
    src = write_csv(root / "in" / "night.csv", lines)
    lake = root / "lake"
    run_etl(EtlOptions(input=str(src), lake=str(lake), full_refresh=True))
    return lake


def _card(page: str, key: str) -> str:
    block = page.split(f'data-kpi="{key}"', 1)[1].split('<div class="kpi"', 1)[0]
    return block.split('<div class="value">', 1)[1].split("</div>", 1)[0]


def test_page_views_without_a_visit_starting_show_zero_visits(overnight_lake, tmp_path):
    out = tmp_path / "r.html"
    day = date(2024, 3, 2)
    build_report(ReportOptions(lake=str(overnight_lake), out=out, start=day, end=day))
    page = out.read_text()
    assert _card(page, "pageviews") == "2"
    assert _card(page, "visits") == "0"
    assert 'data-kpi="visits" data-value="0"' in page
    for ratio in ("views_per_visit", "bounce_rate", "avg_duration"):
        assert _card(page, ratio) == "—", ratio
