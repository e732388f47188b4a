"""The census without numpy counts and fails exactly as the numpy census does (#9).

The Spark job's driver may run on an image without numpy (an EMR bootstrap that could not
install it); the census then runs ``_PlainScanner``. Both scanners are fed the same bytes in the
same chunks, and must return equal censuses or raise the same message.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.errors import InputError
from clickstream.integrity import (
    MAX_RECORD_BYTES,
    Census,
    _PlainScanner,
    _raw_records_plain,
    _Scanner,
    escaped_raw,
    raw_records,
)

#: Bytes that steer the census, and a little text; a BOM now and then at the start.
ALPHABET = [b"a", b"b", b",", b'"', b"\n", b"\r", b"\r\n", b" ", b"\xc3\xa9", b"\xff"]


def run(scanner_type: type[_Scanner], data: bytes, cuts: list[int]) -> Census | str:
    scanner = scanner_type("f.csv")
    edges = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    try:
        for lo, hi in zip(edges, edges[1:], strict=False):
            if hi > lo:
                scanner.feed(data[lo:hi])
        return scanner.finish()
    except InputError as err:
        return str(err)


@settings(max_examples=600, deadline=None)
@given(
    bom=st.booleans(),
    parts=st.lists(st.sampled_from(ALPHABET), max_size=80),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_the_plain_census_equals_the_numpy_census(bom: bool, parts: list[bytes], cuts) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + b"h1,h2\n" + b"".join(parts)
    expected = run(_Scanner, data, cuts)
    got = run(_PlainScanner, data, cuts)
    assert got == expected
    if isinstance(expected, Census):  # the fields compare=False leaves out, too
        assert isinstance(got, Census) and got.blank_at == expected.blank_at


@pytest.mark.parametrize(
    "body",
    [
        b"x" * (MAX_RECORD_BYTES + 10) + b"\nok\n",  # a long record, then a short one
        b"ok\n" + b'"' + b"y" * (MAX_RECORD_BYTES + 10),  # an unclosed quote, never ending
        b"ok\n" + b"z" * 100 + b"\n",  # within the limit
    ],
    ids=["long-record", "unclosed", "fine"],
)
def test_the_plain_census_fails_a_long_record_as_numpy_does(body: bytes) -> None:
    data = b"h1,h2\n" + body
    cuts = list(range(0, len(data), 1024 * 1024))
    expected = run(_Scanner, data, cuts)
    assert run(_PlainScanner, data, cuts) == expected
    assert isinstance(expected, Census) or "longer than 8 MiB" in expected


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.sampled_from(ALPHABET), max_size=60),
    wanted=st.lists(st.integers(min_value=1, max_value=30), max_size=6),
    limit=st.integers(min_value=1, max_value=40),
)
def test_raw_records_without_numpy_equal_the_numpy_ones(
    tmp_path_factory, parts: list[bytes], wanted: list[int], limit: int
) -> None:
    path = tmp_path_factory.mktemp("raw") / "f.csv"
    path.write_bytes(b"h1,h2\n" + b"".join(parts))
    assert _raw_records_plain(str(path), wanted, limit) == raw_records(str(path), wanted, limit)


def test_escaped_raw_is_reversible() -> None:
    """Every byte string has one escaped text, and it reads back to those bytes."""
    import codecs
    import random

    rng = random.Random(7)
    for _ in range(2000):
        data = bytes(rng.choice(b"ab\\x?\xc3\xa9\xff\xe2\x82") for _ in range(rng.randint(0, 12)))
        text = escaped_raw(data)
        back = codecs.escape_decode(text.encode("utf-8"))[0]
        assert back == data.rstrip(b"\r\n"), (data, text)
