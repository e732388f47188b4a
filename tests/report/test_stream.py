"""The report's stream section over real stream statistics (embedded Redis, real consumer)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from clickstream.report import ReportOptions, build_report
from clickstream.stream.consumer import ConsumerOptions, run_consumer
from clickstream.stream.publisher import publish
from tests.stream.conftest import broker_dir, lake_windows, make_lake  # noqa: F401

pytestmark = pytest.mark.stream


def stream_rows(page: str) -> tuple[list[str], list[list[str]]]:
    match = re.search(r'<section class="card" id="stream_windows">(.*?)</section>', page, re.S)
    if match is None:
        return [], []
    heads = re.findall(r"<th[^>]*>(.*?)</th>", match.group(1))
    rows = [
        [html.unescape(c) for c in re.findall(r'<span class="v">(.*?)</span>', row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", match.group(1).split("<tbody>")[1], re.S)
    ]
    return heads, rows


def test_latest_stream_windows_shown_only_when_the_lake_has_them(
    make_lake,  # noqa: F811
    broker_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    lake = make_lake(1500, seed=12)
    before = build_report(ReportOptions(str(lake), tmp_path / "before.html"))
    assert stream_rows(before.path.read_text()) == ([], [])
    publish(str(lake))
    run_consumer(ConsumerOptions(lake=str(lake), idle_exit=0.5, consumer="c1"))
    after = build_report(ReportOptions(str(lake), tmp_path / "after.html"))
    heads, rows = stream_rows(after.path.read_text())
    at = {name: i for i, name in enumerate(heads)}
    shown = [
        (r[at["window_start"]], int(r[at["pageviews"]].replace(",", "")), int(r[at["visitors"]]))
        for r in rows
    ]
    expected = [(f"{w:%Y-%m-%d %H:%M:%S} UTC", p, v) for w, p, v in lake_windows(lake)[::-1][:12]]
    assert shown == expected
    # Top pages read as 'path (views)'; the '[bold]' in a path is kept as text.
    assert re.search(r"^/\S* \(\d+\)", rows[0][at["top_pages"]])
    assert any("/[bold]x (" in r[at["top_pages"]] for r in rows)
