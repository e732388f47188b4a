"""Lakes made by the real ETL, reports made by the real CLI code, pages loaded in real Chromium."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tools.report_screenshot import CHROMIUM, CHROMIUM_ARGS

from clickstream.generate import generate
from clickstream.pipeline import EtlOptions, run_etl
from tests.conftest import write_csv

#: Hostile values: each would run script, inject markup or be evaluated if it were not escaped.
SCRIPT = "</script><script>window.__pwned=1;alert(1)</script>"
IMG = '<img src=x onerror="window.__pwned=2;alert(2)">'
JINJA = "{{ 7*7 }}{% if 1 %}x{% endif %}"
SEPARATORS = "line\u2028sep\u2029para"
PLOTLY_TAGS = '<b>bold</b><a href="javascript:alert(3)">click</a>'
HOSTILE = (SCRIPT, IMG, JINJA, SEPARATORS, PLOTLY_TAGS)

#: 2024-03-01 00:00:00 UTC.
MARCH_1 = 1_709_251_200


def make_lake(root: Path, rows: int, seed: int = 7) -> Path:
    sample = generate(root / "sample.csv.gz", rows, seed=seed, bad_fraction=0.02)
    lake = root / "lake"
    run_etl(EtlOptions(input=str(sample), lake=str(lake), full_refresh=True))
    return lake


@pytest.fixture(scope="session")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated year of traffic (2024), 20,000 page views, 2% bad rows."""
    return make_lake(tmp_path_factory.mktemp("report-demo"), 20_000)


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def hostile_lines() -> list[str]:
    """Page views over ten days of March 2024 whose values carry every hostile string."""
    q = urllib.parse.quote
    lines = []
    for i in range(60):
        payload = HOSTILE[i % len(HOSTILE)]
        user = f"user-{i % 7}"
        url = (
            f"https://www.example.com/p{i % 4}/{q(payload, safe='')}"
            f"?utm_source={q(payload, safe='')}&utm_medium={q(HOSTILE[(i + 1) % 5], safe='')}"
            f"&utm_campaign={q(HOSTILE[(i + 2) % 5], safe='')}"
        )
        time = MARCH_1 + (i % 10) * 86_400 + (i // 10) * 600
        browser = HOSTILE[(i + 3) % 5]
        os_name = HOSTILE[(i + 4) % 5]
        fields = [user, url, str(time), browser, os_name, "1920x1080"]
        lines.append(",".join(_csv_field(f) for f in fields))
    return lines


@pytest.fixture(scope="session")
def hostile_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report-hostile")
    src = write_csv(root / "in" / "hostile.csv", hostile_lines())
    lake = root / "lake"
    run_etl(EtlOptions(input=str(src), lake=str(lake), full_refresh=True))
    return lake


@dataclass
class Visit:
    """A page opened from disk, and everything it tried to do."""

    page: Any
    requests: list[str] = field(default_factory=list)
    """URLs the page asked for besides its own file (each was aborted)."""
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_report(chromium: Any) -> Iterator[Any]:
    """Open an HTML file with every non-file:// request aborted; wait for the charts."""
    contexts = []

    def visit(path: Path) -> Visit:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        seen = Visit(page)
        own = path.absolute().as_uri()

        def route(r: Any) -> None:
            if r.request.url == own:
                r.continue_()
            else:
                seen.requests.append(r.request.url)
                r.abort()

        def dialog(d: Any) -> None:
            seen.dialogs.append(d.message)
            d.dismiss()

        context.route("**/*", route)
        page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else 0)
        page.on("pageerror", lambda e: seen.console_errors.append(str(e)))
        page.on("dialog", dialog)
        page.goto(own, wait_until="load")
        page.wait_for_function(
            "document.querySelectorAll('[data-chart]').length === "
            "document.querySelectorAll('[data-drawn]').length",
            timeout=30_000,
        )
        return seen

    yield visit
    for context in contexts:
        context.close()
