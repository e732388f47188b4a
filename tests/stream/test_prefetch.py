"""The publisher's read-ahead: order kept, errors raised where they happened, close() stops it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clickstream.stream.prefetch import ReadAhead


def test_items_come_in_order_and_all_of_them():
    assert list(ReadAhead(iter(range(1000)), depth=2)) == list(range(1000))


def test_an_error_in_the_producer_is_raised_after_the_items_before_it():
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("broken chunk")

    got = []
    with pytest.raises(ValueError, match="broken chunk"):
        for item in ReadAhead(source()):
            got.append(item)
    assert got == [1, 2]


def test_close_stops_the_producer_within_the_depth_and_joins_it():
    produced = []

    def source() -> Iterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    reader = ReadAhead(source(), depth=2)
    first = next(iter(reader))
    reader.close()
    assert first == 0
    assert not reader._thread.is_alive()
    # One taken, at most `depth` queued and one being put when close() came: no run-away.
    assert len(produced) <= 1 + 2 + 1
