"""An independent census of every input file, so no record is lost without the run noticing.

The engines' CSV readers can lose data without an error: DuckDB's gzip reader stops quietly at a
truncated stream, and its CSV reader skips a record larger than its buffer. So, before anything
is staged, every file is read once more through zlib (C speed, in 1 MiB chunks, never per row)
and the census fails the run, naming the file, when

* a .gz stream is truncated, corrupt or followed by garbage (the file cannot be read to its end);
* a physical line is longer than ``MAX_RECORD_BYTES`` (named by line number).

It also counts physical lines, blank lines and quote characters. After the engine ran, a file
without any ``"`` must have exactly one record per non-blank line after the header, which checks
the reader's count independently. With quotes a record may span lines, so only the bound
``records <= non-blank lines - 1`` is checked (an exact count would need a second CSV parser).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

from clickstream.errors import InputError, InvariantError

#: A physical line longer than this fails the run (the readers cannot be trusted beyond it).
MAX_RECORD_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
assert CHUNK_BYTES <= MAX_RECORD_BYTES, "a too-long line must cross a chunk boundary"

_GZIP_MAGIC = b"\x1f\x8b"
#: A line terminator that ends a blank line: '\n' preceded by '\n' (or by '\n\r').
_BLANK_RE = re.compile(rb"(?<=\n)\r?\n")


@dataclass(frozen=True)
class Census:
    """What the independent pass saw in one file (decompressed bytes)."""

    path: str
    bytes: int
    lines: int
    """Physical lines, the last one counted even without a final newline."""
    blank_lines: int
    """Empty lines (also '\\r'-only ones after the first line); readers skip them."""
    quotes: int
    """Number of '"' bytes: zero means one record per non-blank line."""

    @property
    def records(self) -> int | None:
        """Records after the header, when they follow from line counts alone."""
        if self.quotes:
            return None
        return max(0, self.lines - self.blank_lines - 1)

    def check(self, rows_read: int) -> None:
        """Raise when the reader's count disagrees with this census."""
        expected = self.records
        if expected is not None and rows_read != expected:
            raise InvariantError(
                f"{self.path}: the reader returned {rows_read:,} records but the file holds "
                f"{expected:,}; nothing was written"
            )
        ceiling = max(0, self.lines - self.blank_lines - 1)
        if rows_read > ceiling:
            raise InvariantError(
                f"{self.path}: the reader returned {rows_read:,} records from {ceiling:,} lines; "
                "nothing was written"
            )


def _gunzip(path: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress every gzip member; raise unless the stream ends exactly at a member's end.

    Every turn of the inner loop either shortens ``data`` or yields output, so it ends. After a
    member ends, ``unused_data`` alone holds what follows it: CPython 3.11 leaves the same bytes
    in ``unconsumed_tail`` too, and feeding both duplicated (and, past 1 MiB, looped) output.
    """
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    after_member = False  # the current inflater started right after a complete member
    try:
        for chunk in chunks:
            data = chunk
            while data:
                if inflater.eof:
                    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    after_member = True
                try:
                    # Bounded output per call, so a gzip bomb never sits in memory at once.
                    out = inflater.decompress(data, CHUNK_BYTES)
                except zlib.error as err:
                    if after_member:
                        raise InputError(
                            f"{path}: data after the end of the gzip stream (not another gzip "
                            "member); nothing was written"
                        ) from err
                    raise
                rest = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
                if not out and len(rest) >= len(data):
                    raise InputError(f"{path}: gzip data makes no progress; nothing was written")
                data = rest
                if out:
                    after_member = False
                    yield out
        # Input is used up, but output held back by the bound may still be pending.
        while not inflater.eof:
            out = inflater.decompress(b"", CHUNK_BYTES)
            if not out:
                break
            yield out
    except zlib.error as err:
        raise InputError(f"{path}: corrupt gzip data ({err}); nothing was written") from err
    if not inflater.eof:
        raise InputError(f"{path}: truncated gzip file (it ends mid-stream); nothing was written")


def census(path: str, chunks: Iterable[bytes]) -> Census:
    """Count lines, blank lines and quotes of one file's (compressed) byte stream."""
    data = _gunzip(path, chunks) if path.lower().endswith(".gz") else chunks
    total = lines = blanks = quotes = 0
    line_len = 0  # bytes of the current line so far
    carry = b""  # the last two bytes seen, for blank lines across a chunk boundary
    for chunk in data:
        if not chunk:
            continue
        total += len(chunk)
        newlines = chunk.count(b"\n")
        quotes += chunk.count(b'"')
        first = chunk.find(b"\n")
        # Lines wholly inside a chunk are shorter than CHUNK_BYTES; only a line crossing a
        # boundary can be too long, and it is measured here.
        head = len(chunk) if first < 0 else first
        if line_len + head > MAX_RECORD_BYTES:
            raise InputError(
                f"{path}: line {lines + 1} is longer than {MAX_RECORD_BYTES // (1024 * 1024)} MiB "
                "(no record may be that large); nothing was written"
            )
        line_len = line_len + len(chunk) if first < 0 else len(chunk) - chunk.rfind(b"\n") - 1
        window = carry + chunk
        if b"\n\n" in window or b"\n\r\n" in window:
            blanks += sum(1 for m in _BLANK_RE.finditer(window) if m.end() > len(carry))
        lines += newlines
        carry = window[-2:]
    if total and not carry.endswith(b"\n"):
        lines += 1
    return Census(path, total, lines, blanks, quotes)


def _local_chunks(path: str) -> Iterator[bytes]:
    try:
        with open(path, "rb") as fh:
            yield from iter(lambda: fh.read(CHUNK_BYTES), b"")
    except OSError as err:
        raise InputError(
            f"{path}: cannot read ({err.strerror or err}); nothing was written"
        ) from err


def _s3_chunks(uri: str) -> Iterator[bytes]:
    from clickstream import s3

    body: IO[bytes] = s3.get_object(uri)
    try:
        yield from iter(lambda: body.read(CHUNK_BYTES), b"")
    except Exception as err:  # botocore's streaming errors share no base class with OSError
        raise InputError(f"{uri}: cannot read ({s3.error_message(err)})") from err
    finally:
        body.close()


def take_census(paths: list[str], workers: int = 4) -> dict[str, Census]:
    """Census of every file, several at once (zlib and file reads release the GIL)."""
    from clickstream import s3

    def one(path: str) -> Census:
        return census(path, _s3_chunks(path) if s3.is_s3(path) else _local_chunks(path))

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(paths)))) as pool:
        return {c.path: c for c in pool.map(one, paths)}
