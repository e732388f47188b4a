"""Property tests: the URL rules against a Python oracle, and reconciliation on any input file.

Hypothesis generates the inputs; every example runs the real contract SQL on DuckDB (the URL
rules through ``contract_select`` on a VALUES relation, the file property through the whole ETL).
"""

from __future__ import annotations

import csv
import io
import ipaddress
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import unquote_plus

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream.contract.dialects import DUCKDB
from clickstream.contract.rules import RAW_FIELDS, contract_select
from clickstream.contract.schema import REQUIRED_INPUT_COLUMNS
from clickstream.pipeline import EtlOptions, run_etl
from tests.conftest import lake_rows

SAFE = "abcdefghijklmnopqrstuvwxyz0123456789-._~"
names = st.text(SAFE, min_size=1, max_size=8)
host_names = st.lists(st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6),
                      min_size=1, max_size=3).map(".".join)  # fmt: skip
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a.compressed}]")
hosts = st.one_of(host_names, ipv6)
#: Query values: text with characters that need escaping, written percent-encoded or with '+'.
values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=6)


def encode(text: str) -> str:
    out = []
    for ch in text:
        if ch in SAFE:
            out.append(ch)
        elif ch == " ":
            out.append("+")
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode()))
    return "".join(out)


urls = st.builds(
    lambda scheme, host, port, path, params: (
        f"{scheme}://{host}{'' if port is None else f':{port}'}/{path}"
        + ("?" + "&".join(f"{encode(k)}={encode(v)}" for k, v in params) if params else ""),
        host,
        port,
        params,
    ),
    st.sampled_from(["http", "https", "HTTP"]),
    hosts,
    st.one_of(st.none(), st.integers(1, 65535)),
    names,
    st.lists(st.tuples(names, values), max_size=5),
)


def run_contract(urls_in: list[str]) -> list[dict]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = ", ".join(
        "("
        + ", ".join(
            [
                "'u'",
                "'" + u.replace("'", "''") + "'",
                "'1706745600'",
                "'b'",
                "'o'",
                "'1x1'",
                "'f'",
                str(i),
            ]
        )
        + ")"  # fmt: skip
        for i, u in enumerate(urls_in)
    )
    columns = ", ".join([*(RAW_FIELDS[c] for c in REQUIRED_INPUT_COLUMNS), "source_file", "i"])
    source = f"SELECT * FROM (VALUES {rows}) AS t({columns})"
    rel = con.sql(contract_select(source, DUCKDB, passthrough=("i",)) + " ORDER BY i")
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(urls, min_size=1, max_size=20))
def test_url_parts_match_a_python_oracle(batch) -> None:
    got = run_contract([u for u, *_ in batch])
    for row, (url, host, port, params) in zip(got, batch, strict=True):
        assert row["reject_reason"] is None, url
        assert row["url_host"] == host.lower()
        assert row["url_port"] == port
        query = url.partition("?")[2]
        assert row["url_query"] == (query or None)  # as written, never decoded
        expected: dict[str, str | None] = {}
        for k, v in params:
            expected.setdefault(k, unquote_plus(encode(v)) or None)
        assert (row["query_params"] or {}) == expected
        first_source = next((v for k, v in params if k.lower() == "utm_source"), None)
        assert row["utm_source"] == (first_source or None)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEF:.", min_size=0, max_size=20))
def test_a_bracketed_host_is_kept_only_when_it_is_ipv6(inside: str) -> None:
    [row] = run_contract([f"http://[{inside}]/"])
    try:
        valid = isinstance(ipaddress.ip_address(inside), ipaddress.IPv6Address)
    except ValueError:
        valid = False
    assert (row["reject_reason"] is None) == valid, inside


# -- reconciliation on generated files ----------------------------------------------------------
good = st.builds(
    lambda u, t, b: [u, f"https://a.com/{u}", str(1_706_745_600 + t), b, "Linux", "1x1"],
    names,
    st.integers(0, 10_000_000),
    st.sampled_from(["Chrome", "multi\nline", "a,b", 'say "hi"', ""]),
)
rule_bad = good.map(lambda f: [f[0], f[1], "not-a-time", *f[3:]])
short = good.map(lambda f: f[:4])
long = good.map(lambda f: [*f, "surplus"])
record = st.one_of(good, good, rule_bad, short, long)


def render(records: list[list[str] | None]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REQUIRED_INPUT_COLUMNS)
    for rec in records:
        if rec is None:
            out.write("\n")  # a blank line: not a record
        else:
            writer.writerow(rec)
    return out.getvalue()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(record, st.none()), max_size=40), st.booleans())
def test_every_record_is_written_rejected_or_duplicate(records, dup_tail) -> None:
    if dup_tail and records:
        records = records + records[:3]  # repeated records: duplicates
    text = render(records)
    # The record count, independently of the engine: Python's csv module, blank lines skipped.
    counted = sum(1 for r in csv.reader(io.StringIO(text)) if r) - 1
    with TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.csv"
        src.write_text(text)
        report = run_etl(EtlOptions(input=str(src), lake=str(Path(tmp) / "lake")))
        assert report.rows_read == counted
        assert report.rows_read == (
            report.rows_written + report.rows_rejected + report.rows_duplicate
        )
        assert len(lake_rows(Path(tmp) / "lake")) == report.rows_written
        assert len(lake_rows(Path(tmp) / "lake", "clickstream_rejected")) == report.rows_rejected


def test_a_url_with_many_repeated_parameters_keeps_each_first_value() -> None:
    # 60,000 parameters over 1,000 keys (the parser used to search the list once per pair).
    url = "https://a.com/?" + "&".join(f"k{i % 1000}=v{i}" for i in range(60_000))
    [row] = run_contract([url])
    assert row["query_params"] == {f"k{i}": f"v{i}" for i in range(1000)}
