"""The report in headless Chromium: offline, quiet, drawn, right, and inert to hostile data."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from PIL import Image

from clickstream.report import ReportOptions, build_report
from tests.report import oracle
from tests.report.conftest import HOSTILE, IMG, JINJA, PLOTLY_TAGS, SCRIPT, SEPARATORS

pytestmark = pytest.mark.browser

KPI_JS = """() => Array.from(document.querySelectorAll('[data-kpi]')).map(e => ({
  key: e.dataset.kpi, value: e.dataset.value, shown: e.querySelector('.value').textContent.trim()
}))"""

CHARTS_JS = """() => Array.from(document.querySelectorAll('[data-chart]')).map(e => {
  const svg = e.querySelector('svg.main-svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {name: e.dataset.chart, width: box.width, height: box.height,
          marks: e.querySelectorAll('.bars .point path, g.slice path, path.js-line').length};
})"""


def report(lake: Path, out: Path, **options: object) -> Path:
    build_report(ReportOptions(lake=str(lake), out=out, **options))  # type: ignore[arg-type]
    return out


def page_kpis(visit) -> dict[str, dict[str, str]]:
    return {k["key"]: k for k in visit.page.evaluate(KPI_JS)}


def assert_kpis_match(visit, expected: dict[str, object]) -> None:
    shown = page_kpis(visit)
    assert set(shown) == set(expected)
    for key in ("pageviews", "visitors", "visits"):
        assert int(shown[key]["value"]) == expected[key], key
        assert shown[key]["shown"] == f"{expected[key]:,}", key
    for key in ("views_per_visit", "bounce_rate", "avg_duration"):
        assert float(shown[key]["value"]) == pytest.approx(expected[key], rel=1e-9), key
    assert shown["views_per_visit"]["shown"] == f"{expected['views_per_visit']:.2f}"
    assert shown["bounce_rate"]["shown"] == f"{expected['bounce_rate'] * 100:.1f}%"


def assert_quiet(visit) -> None:
    assert visit.requests == []
    assert visit.console_errors == []
    assert visit.dialogs == []


def test_opens_offline_draws_every_chart_and_stays_quiet(demo_lake, tmp_path, open_report):
    out = report(demo_lake, tmp_path / "report.html")
    assert out.stat().st_size < 3 * 1024 * 1024
    markup = re.sub(r"<script[^>]*>.*?</script>", "", out.read_text(), flags=re.S)
    for reference in ("src=", "href=", "@import", "url(", "<link", "@font-face"):
        assert reference not in markup, reference
    visit = open_report(out)
    assert_quiet(visit)
    charts = visit.page.evaluate(CHARTS_JS)
    assert {c["name"] for c in charts} >= {"timeseries", "sources", "browsers", "hosts"}
    for chart in charts:
        assert chart["width"] > 100 and chart["height"] > 100, chart
        assert chart["marks"] > 0, chart
    assert visit.page.evaluate("document.scripts.length") == 3
    png = visit.page.screenshot(full_page=True)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.height > 1500
    colours = image.quantize(64).getcolors()
    assert colours is not None and len(colours) > 8  # text, cards and coloured charts, not blank
    ink = sum(n for n, c in image.getcolors(1 << 24) or [] if sum(c) < 600)
    assert ink > image.width * image.height * 0.02


def test_kpis_equal_sql_for_the_default_period(demo_lake, tmp_path, open_report):
    visit = open_report(report(demo_lake, tmp_path / "r.html"))
    first, last = oracle.lake_days(demo_lake)
    start = last - timedelta(days=29)
    assert visit.page.get_attribute("#period", "data-start") == start.isoformat()
    assert visit.page.get_attribute("#period", "data-end") == last.isoformat()
    assert_kpis_match(visit, oracle.kpis(demo_lake, start, last))
    assert_quiet(visit)


@pytest.mark.parametrize(
    ("start", "end", "host", "buckets"),
    [
        (date(2024, 6, 1), date(2024, 6, 7), None, 7),
        (date(2024, 6, 1), date(2024, 6, 2), None, 48),  # short: hourly
        (date(2024, 6, 1), date(2024, 6, 3), None, 72),
        (date(2024, 6, 1), date(2024, 6, 4), None, 4),  # four days: daily again
        (date(2024, 3, 1), date(2024, 5, 31), "www.example.com", 92),
        (date(2024, 1, 1), date(2024, 1, 10), "shop.example.com", 10),
    ],
)
def test_from_to_host_change_the_numbers_as_sql_says(
    demo_lake, tmp_path, open_report, start, end, host, buckets
):
    out = report(demo_lake, tmp_path / "r.html", start=start, end=end, host=host)
    visit = open_report(out)
    expected = oracle.kpis(demo_lake, start, end, host)
    assert_kpis_match(visit, expected)
    whole = oracle.kpis(demo_lake, start, end)
    if host:
        assert 0 < expected["pageviews"] < whole["pageviews"]
        hosts = visit.page.inner_text("#hosts")
        assert host in hosts and "blog.example.org" not in hosts
    points = visit.page.evaluate(
        "() => document.querySelector('[data-chart=timeseries]').data[0].x.length"
    )
    assert points == buckets
    assert_quiet(visit)


def test_hostile_data_stays_text(hostile_lake, tmp_path, open_report):
    out = report(hostile_lake, tmp_path / "r.html")
    html = out.read_text()
    assert html.count("<script") == 3
    assert "\u2028" not in html.split('id="report-data">')[1].split("</script>")[0]
    visit = open_report(out)
    assert_quiet(visit)
    page = visit.page
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.scripts.length") == 3
    assert page.evaluate("document.querySelectorAll('img, [onerror], iframe, object').length") == 0
    assert page.evaluate("document.querySelectorAll('a[href]').length") == 0
    text = page.inner_text("main")
    for payload in (SCRIPT, IMG, SEPARATORS):
        assert payload in text, payload
    assert JINJA in text and "49" not in text.replace(",", "")
    # Plotly reads tags in labels: the chart's SVG must show them as characters instead.
    for chart, payload in (("browsers", IMG), ("sources", SCRIPT), ("systems", PLOTLY_TAGS)):
        label_text = page.evaluate(
            f"() => document.querySelector('[data-chart={chart}]').textContent"
        )
        assert payload in label_text, (chart, payload)
    assert page.evaluate("document.querySelectorAll('[data-chart] svg b, svg a').length") == 0
    assert len(HOSTILE) == 5


def test_content_security_policy_stops_injected_script_and_requests(
    demo_lake, tmp_path, open_report
):
    """Second line of defence: markup that got in anyway could neither run nor fetch."""
    page = report(demo_lake, tmp_path / "r.html").read_text()
    injected = (
        "<script>window.__pwned = 9;</script>"
        '<img src="https://example.invalid/pixel.png">'
        '<link rel="stylesheet" href="https://example.invalid/x.css">'
        "</body>"
    )
    tampered = tmp_path / "tampered.html"
    tampered.write_text(page.replace("</body>", injected, 1))
    visit = open_report(tampered)
    assert visit.page.evaluate("window.__pwned") is None
    assert visit.requests == []  # refused by the policy before reaching the network
    assert visit.console_errors and all(
        "Content Security Policy" in e or "Content-Security-Policy" in e
        for e in visit.console_errors
    ), visit.console_errors
    assert visit.page.evaluate("document.querySelectorAll('[data-drawn]').length") >= 6
