"""The contract's shortcuts (issue #11) against Python oracles, on DuckDB.

Each shortcut skips work for the common case (no whitespace at a field's ends, no '@' in the
authority); these tests feed the uncommon cases and check the result is what the full rule gives.
"""

from __future__ import annotations

import hashlib

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream.contract.dialects import DUCKDB
from clickstream.contract.rules import RAW_FIELDS, contract_select
from clickstream.contract.schema import REQUIRED_INPUT_COLUMNS

#: What the contract trims, and look-alikes it must keep (vertical tab, form feed, NBSP, ideographic
#: space, a non-ASCII first character).
TRIMMED = " \t\r\n"
PIECES = [" ", "\t", "\r", "\n", "\x0b", "\x0c", "\xa0", "\u3000", "a", "é", "😀", ","]
edged = st.lists(st.sampled_from(PIECES), max_size=6).map("".join)


def run_contract(rows: list[tuple[str | None, ...]]) -> list[dict]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    columns = [*(RAW_FIELDS[c] for c in REQUIRED_INPUT_COLUMNS), "source_file", "i"]
    con.execute(
        "CREATE TABLE src (" + ", ".join(f"{c} VARCHAR" for c in columns[:-1]) + ", i INTEGER)"
    )
    con.executemany(
        f"INSERT INTO src VALUES ({', '.join('?' for _ in columns)})",
        [(*r, "f", i) for i, r in enumerate(rows)],
    )
    rel = con.sql(contract_select("SELECT * FROM src", DUCKDB, passthrough=("i",)) + " ORDER BY i")
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(*(edged for _ in REQUIRED_INPUT_COLUMNS)), min_size=1, max_size=20))
def test_fields_are_trimmed_exactly_at_both_ends(rows) -> None:
    got = run_contract(rows)
    for row, fields in zip(got, rows, strict=True):
        trimmed = [f.strip(TRIMMED) for f in fields]
        expected_id = hashlib.md5("\x1f".join(trimmed).encode()).hexdigest()
        assert row["event_id"] == expected_id, fields
        assert row["screen_resolution"] == (trimmed[5] or None), fields
        assert row["anonymous_user_id"] == (trimmed[0] or None), fields


def test_a_null_field_hashes_as_empty() -> None:
    fields = ("u", None, "1600000000", None, "o", None)
    (row,) = run_contract([fields])
    assert row["event_id"] == hashlib.md5("\x1f".join(f or "" for f in fields).encode()).hexdigest()


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://a.com/p@q?e=x@y#f@g", "https://a.com/p@q?e=x@y#f@g"),
        ("https://a.com?@", "https://a.com?@"),
        ("https://u@a.com/p@q", "https://a.com/p@q"),
        ("https://u:p@v@a.com:81/", "https://a.com:81/"),
        ("https://@a.com/", "https://a.com/"),
    ],
)
def test_only_user_info_in_the_authority_is_removed(url: str, clean: str) -> None:
    (row,) = run_contract([("u", url, "1600000000", "b", "o", "1x1")])
    assert row["reject_reason"] is None
    assert row["url"] == clean
    assert row["url_host"] == "a.com"
