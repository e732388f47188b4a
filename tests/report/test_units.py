"""The report's pure parts: formatting, inert JSON, periods, the pinned chart library, SQL scope."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickstream.errors import ConfigError, LakeError
from clickstream.query.session import open_lake
from clickstream.report import dashboard
from clickstream.report import format as fmt
from clickstream.report.period import Period, choose_period, parse_day
from clickstream.report.queries import Scope
from clickstream.report.render import PLOTLY_SHA256, environment, render, script_json


@pytest.mark.parametrize(
    ("fn", "value", "text"),
    [
        (fmt.count, 1234567, "1,234,567"),
        (fmt.count, 0, "0"),
        (fmt.count, None, "—"),
        (fmt.decimal, 3.14159, "3.14"),
        (fmt.percent, 0.1234, "12.3%"),
        (fmt.percent, 1.0, "100.0%"),
        (fmt.duration, 0.4, "0s"),
        (fmt.duration, 59.6, "1m 00s"),
        (fmt.duration, 605, "10m 05s"),
        (fmt.duration, 3725, "1h 02m"),
        (fmt.duration, 2 * 86_400 + 3 * 3600, "2d 03h"),
        (fmt.duration, None, "—"),
        (fmt.change, 0.052, "+5.2%"),
        (fmt.change, -0.5, "−50.0%"),
        (fmt.change, 0.0001, "0.0%"),
        (fmt.change, None, "—"),
        (fmt.size, 1_300_000, "1.2 MB"),
        (fmt.size, 2048, "2.0 KB"),
        (fmt.timestamp, datetime(2024, 1, 2, 3, 4, 5), "2024-01-02 03:04:05 UTC"),
        (fmt.timestamp, "2024-01-02T03:04:05+02:00", "2024-01-02 01:04:05 UTC"),
    ],
)
def test_numbers_for_people(fn, value, text):
    assert fn(value) == text


def test_change_in_points_and_age():
    assert fmt.change(-0.013, points=True) == "−1.3 pp"
    now = datetime(2024, 1, 10, tzinfo=UTC)
    assert fmt.age(datetime(2024, 1, 7), now) == "3 days ago"
    assert fmt.age(datetime(2024, 1, 9, 23, 0), now) == "1 hour ago"
    assert fmt.age(datetime(2024, 1, 11), now) == "in the future"


@given(st.recursive(st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)))
def test_script_json_cannot_leave_its_script_element(value):
    text = str(script_json({"v": value}))
    for forbidden in ("<", ">", "&", "\u2028", "\u2029"):
        assert forbidden not in text
    assert json.loads(text) == {"v": value}


def test_script_json_refuses_nan():
    with pytest.raises(ValueError):
        script_json({"x": float("nan")})


def test_periods():
    p = Period(date(2024, 3, 1), date(2024, 3, 30))
    assert p.days == 30 and not p.hourly
    assert p.previous == Period(date(2024, 1, 31), date(2024, 2, 29))
    assert Period(date(2024, 3, 1), date(2024, 3, 3)).hourly
    d0, d1 = date(2024, 1, 1), date(2024, 12, 31)
    assert choose_period(None, None, d0, d1) == Period(d1 - timedelta(days=29), d1)
    assert choose_period(date(2024, 6, 1), None, d0, d1) == Period(date(2024, 6, 1), d1)
    assert choose_period(None, date(2024, 6, 30), d0, d1) == Period(
        date(2024, 6, 1), date(2024, 6, 30)
    )
    with pytest.raises(ConfigError, match="after"):
        choose_period(date(2024, 6, 2), date(2024, 6, 1), d0, d1)
    with pytest.raises(LakeError, match=r"--from 2025-01-01 is after the last day .* \(2024-12-31"):
        choose_period(date(2025, 1, 1), None, d0, d1)
    with pytest.raises(LakeError, match=r"last day with page views on a.example \(2024-12-31\)"):
        choose_period(date(2025, 1, 1), None, d0, d1, "a.example")
    with pytest.raises(LakeError, match="no page views on x.example"):
        choose_period(None, None, None, None, "x.example")


@pytest.mark.parametrize("bad", ["2024-02-30", "2024/01/01", "20240101", "", "2024-01-01T00:00"])
def test_bad_days(bad):
    with pytest.raises(ConfigError, match="--from"):
        parse_day(bad, "--from")


def test_vendored_plotly_matches_its_pin():
    data = resources.files("clickstream.report").joinpath("vendor", "plotly-basic.min.js")
    assert hashlib.sha256(data.read_bytes()).hexdigest() == PLOTLY_SHA256
    assert b"plotly.js (basic - minified) v4.1.1" in data.read_bytes()[:200]


def test_templates_autoescape():
    assert environment().autoescape is True


def test_shadowed_views_over_the_whole_lake_equal_the_sessions_views(demo_lake):
    """The report's scope re-declares the views from their files: over everything, same rows."""
    with open_lake(str(demo_lake)) as session:
        first, last = session.execute(
            "SELECT min(event_date), max(event_date) FROM clickstream"
        ).fetchone()
        scope = Scope(Period(first, last), None).with_clause()
        for view in ("sessions", "top_pages", "devices", "pageviews_daily", "traffic_sources"):
            ours = session.execute(f"{scope} SELECT * FROM {view} ORDER BY ALL").fetchall()
            theirs = session.execute(f"SELECT * FROM {view} ORDER BY ALL").fetchall()
            assert ours == theirs and ours, view


def test_stream_windows_render_whatever_their_columns(tmp_path):
    rows = [
        {
            "consumer_group": "<b>g</b>",
            "window_start": datetime(2024, 1, 1, 0, 1),
            "pageviews": 12,
            "top_pages": [{"url_path": "</script><script>alert(1)</script>", "pageviews": 3}],
        }
    ]
    table = dashboard.stream_table(rows)
    assert [c.kind for c in table.columns] == ["text", "text", "count", "text"]
    page = render(_minimal_context(table), {"charts": {}})
    assert page.count("<script") == 3
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;g&lt;/b&gt;" in page


def _minimal_context(stream: dashboard.Table) -> dict[str, object]:
    empty = {
        name: dashboard.table(name, t, [], cols)
        for name, (t, cols) in dashboard.BREAKDOWN_TABLES.items()
    }
    period = Period(date(2024, 1, 1), date(2024, 1, 30))
    return {
        "period": period,
        "previous": period.previous,
        "hourly": False,
        "host": None,
        "lake": "lake",
        "generated": "now",
        "seconds": "0.1 s",
        "plotly_version": "4.1.1",
        "kpis": dashboard.kpis({}),
        "tables": {
            **empty,
            "rejected": dashboard.table("rejected", "Rejected", [], []),
            "runs": dashboard.runs_table([]),
            "stream_windows": stream,
        },
        "empty_charts": [],
        "freshness": [],
    }


def test_chart_labels_are_escaped_cut_and_distinct():
    from clickstream.report.charts import LABEL_CHARS, bars

    long = "x" * 100
    spec = bars([long, long + "y", None, "<b>&"], [3, 2, 1, 1], "Visits")
    y = spec["data"][0]["y"]
    assert y[0] == "x" * (LABEL_CHARS - 1) + "…"
    assert y[1] == y[0] + " (2)"
    assert y[2] == "(none)" and y[3] == "&lt;b&gt;&amp;"
