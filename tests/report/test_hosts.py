"""--host: an unknown host names the hosts the lake has; a host typed as a URL still matches."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from clickstream.errors import ConfigError
from clickstream.pipeline import EtlOptions, run_etl
from clickstream.report.build import normalise_host
from tests.conftest import write_csv
from tests.report.conftest import MARCH_1
from tests.report.test_cli import cli, one_line_error


@pytest.fixture(scope="module")
def many_hosts_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """13 hosts; host h<i> has i+1 page views (so h12 is the busiest)."""
    root = tmp_path_factory.mktemp("report-hosts")
    lines = [
        f"u{i},https://h{i}.example.com/p,{MARCH_1 + i * 60 + k},Firefox,Linux,800x600"
        for i in range(13)
        for k in range(i + 1)
    ]
    src = write_csv(root / "in" / "hosts.csv", lines)
    lake = root / "lake"
    run_etl(EtlOptions(input=str(src), lake=str(lake), full_refresh=True))
    return lake


def lake_hosts(lake: Path) -> list[str]:
    files = str(lake / "clickstream" / "**" / "*.parquet")
    rows = duckdb.sql(
        f"SELECT url_host FROM read_parquet('{files}') GROUP BY 1 ORDER BY count(*) DESC, 1"
    ).fetchall()
    return [r[0] for r in rows]


def test_unknown_host_lists_the_hosts_of_the_lake(demo_lake, tmp_path):
    proc = cli("--lake", str(demo_lake), "--out", str(tmp_path / "r.html"), "--host", "no.example")
    hosts = lake_hosts(demo_lake)
    assert 0 < len(hosts) <= 10
    one_line_error(proc, 1, "no page views on no.example", "hosts in the lake", *hosts)
    assert "more" not in proc.stderr


def test_unknown_host_lists_ten_busiest_and_counts_the_rest(many_hosts_lake, tmp_path):
    out = tmp_path / "r.html"
    proc = cli("--lake", str(many_hosts_lake), "--out", str(out), "--host", "no.example")
    hosts = lake_hosts(many_hosts_lake)
    assert len(hosts) == 13
    one_line_error(proc, 1, ", ".join(hosts[:10]) + " and 3 more")
    assert hosts[10] + "," not in proc.stderr and hosts[-1] not in proc.stderr


@pytest.mark.parametrize(
    ("typed", "host"),
    [
        ("www.example.com", "www.example.com"),
        ("  WWW.Example.COM ", "www.example.com"),
        ("https://www.example.com/", "www.example.com"),
        ("http://www.example.com/a/b?c=1#d", "www.example.com"),
        ("www.example.com.", "www.example.com"),
        ("HTTPS://user:pw@www.example.com./x", "www.example.com"),
        ("www.example.com:8080", "www.example.com:8080"),  # a port is kept (see below)
        ("[::1]", "[::1]"),
    ],
)
def test_host_is_normalised(typed, host):
    assert normalise_host(typed) == host


@pytest.mark.parametrize("typed", ["", " ", ".", "https://", "https:///path", "user@"])
def test_empty_host_is_refused(typed):
    with pytest.raises(ConfigError, match="--host"):
        normalise_host(typed)


def _pageviews(page: str) -> str:
    return page.split('data-kpi="pageviews" data-value="', 1)[1].split('"', 1)[0]


@pytest.fixture(scope="module")
def dotted_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dot.example.com: 2 page views written with the root's trailing dot, 3 without."""
    root = tmp_path_factory.mktemp("report-dotted")
    urls = ["https://dot.example.com./a"] * 2 + ["https://Dot.example.com/b"] * 3
    urls += ["https://other.example.com:8443/c"]
    lines = [f"u{i},{u},{MARCH_1 + i * 60},Firefox,Linux,800x600" for i, u in enumerate(urls)]
    src = write_csv(root / "in" / "dot.csv", lines)
    lake = root / "lake"
    run_etl(EtlOptions(input=str(src), lake=str(lake), full_refresh=True))
    return lake


@pytest.mark.parametrize(
    "typed",
    [
        "dot.example.com",
        "dot.example.com.",
        "https://DOT.example.com/",
        "http://dot.example.com./b",
    ],
)
def test_host_typed_as_url_or_with_the_trailing_dot_matches(dotted_lake, tmp_path, typed):
    out = tmp_path / "r.html"
    proc = cli("--lake", str(dotted_lake), "--out", str(out), "--host", typed, "-q")
    assert proc.returncode == 0, proc.stderr
    assert _pageviews(out.read_text()) == "5"


def test_a_port_is_not_part_of_the_lakes_hosts(dotted_lake, tmp_path):
    assert "other.example.com" in lake_hosts(dotted_lake)  # the lake keeps no port
    proc = cli(
        "--lake",
        str(dotted_lake),
        "--out",
        str(tmp_path / "r.html"),
        "--host",
        "other.example.com:8443",
    )
    one_line_error(proc, 1, "no page views on other.example.com:8443", "other.example.com")
