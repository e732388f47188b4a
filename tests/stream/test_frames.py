"""Records framed for Redis by DuckDB and sent as one buffer: byte for byte what a client
library would send, whatever the payload (UTF-8, CR/LF, empty) and however the batch is sliced."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from clickstream.errors import StreamError
from clickstream.stream.transports import concatenated, resp_bulk_sql

PAYLOADS = [b'{"a": "\xc3\xa9"}', b"", b"line\r\nbreak", b"$3\r\nfake", b"x" * 70_000]


def resp(values: list[bytes]) -> bytes:
    return b"".join(b"$%d\r\n%s\r\n" % (len(v), v) for v in values)


def framed(values: list[bytes]) -> pa.Array:
    con = duckdb.connect()
    con.register("t", pa.table({"i": range(len(values)), "p": pa.array(values, pa.binary())}))
    sql = f"SELECT {resp_bulk_sql('p')} AS f FROM t ORDER BY i"
    return con.execute(sql).to_arrow_table().column(0)


def test_duckdb_frames_equal_the_protocol():
    frames = framed(PAYLOADS).combine_chunks()
    assert bytes(concatenated(frames)) == resp(PAYLOADS)


@pytest.mark.parametrize("binary", [pa.binary(), pa.large_binary()])
def test_a_slice_sends_only_its_own_records(binary: pa.DataType):
    frames = framed(PAYLOADS).combine_chunks().cast(binary)
    assert bytes(concatenated(frames.slice(1, 3))) == resp(PAYLOADS[1:4])
    assert bytes(concatenated(frames.slice(4))) == resp(PAYLOADS[4:])


def test_a_null_record_is_refused():
    with pytest.raises(StreamError):
        concatenated(pa.array([b"$1\r\na\r\n", None], pa.binary()))
