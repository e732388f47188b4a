"""An independent census of every input file, so no record is lost without the run noticing.

The engines' CSV readers can lose data without an error: DuckDB's gzip reader stops quietly at a
truncated stream, and its CSV reader splits a record larger than its buffer into many broken rows.
So, before anything is staged, every file is read once more through zlib (C speed, in 1 MiB
chunks) and its records are counted with numpy (vectorised, never per row in Python) by the
RFC 4180 rule: a newline ends a record when an even number of '"' precede it. The census fails the
run, naming the file and line, when

* a .gz stream is truncated, corrupt or followed by garbage (the file cannot be read to its end);
* a record (quoted newlines included) is longer than ``MAX_RECORD_BYTES``; an unclosed quote makes
  the rest of the file one record, so it fails here too once that passes the limit;
* a '"' stands where RFC 4180 allows none (inside an unquoted field, or after a closing quote
  without a delimiter): readers disagree on such input (DuckDB reads some of these as text and
  resynchronises on others), so no count of it could be trusted;
* a carriage return outside quotes is not followed by a newline (CR-only line endings, or a stray
  CR, which DuckDB's reader cannot parse).

After the engine ran, the reader's record count must equal the census count exactly.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from clickstream.errors import InputError, InvariantError

log = logging.getLogger(__name__)

#: A record longer than this fails the run (the readers cannot be trusted beyond it; DuckDB's
#: memory grows many times a record's size while it splits an oversized one).
MAX_RECORD_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
assert CHUNK_BYTES <= MAX_RECORD_BYTES, "a too-long record must cross a chunk boundary"

_GZIP_MAGIC = b"\x1f\x8b"
_QUOTE, _NL, _CR, _COMMA = 34, 10, 13, 44
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Census:
    """What the independent pass saw in one file (decompressed bytes)."""

    path: str
    bytes: int
    lines: int
    """Physical lines, the last one counted even without a final newline."""
    blank_lines: int
    """Empty records (also '\\r'-only ones); readers skip them."""
    quotes: int
    """Number of '"' bytes."""
    records: int
    """Records after the header (blank ones not counted), by the RFC 4180 rule."""
    multiline: bool = False
    """Some record spans lines (a quoted newline) or a quote is never closed: readers number
    such a file's records, not its physical lines (Spark reads it whole)."""
    open_quote: bool = False
    """A '"' is never closed: the rest of the file after it is one malformed record."""
    blank_at: tuple[int, ...] = field(default=(), compare=False, repr=False)
    """Logical line numbers (newlines inside quotes not counted, header = 1) of blank lines."""
    ends_with_newline: bool = True
    """The last byte is '\\n' (or the file is empty)."""
    mixed_endings_at: int = 0
    """The first line that ends in CRLF where the header ends in LF, or the reverse (0: none).
    Spark reads such a file; DuckDB's reader cannot."""

    def check(self, rows_read: int) -> None:
        """Raise when the reader's count disagrees with this census."""
        if rows_read != self.records:
            raise InvariantError(
                f"{self.path}: the reader returned {rows_read:,} records but the file holds "
                f"{self.records:,}; nothing was written"
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


def _fail(path: str, line: int, what: str) -> InputError:
    return InputError(f"{path}: line {line}: {what}; nothing was written")


@dataclass
class _Scanner:
    """Counts one file's records chunk by chunk; every check is a numpy operation on a chunk."""

    path: str
    pos: int = 0
    """Offset of the next chunk in the file."""
    quotes: int = 0
    lines: int = 0
    """Newlines seen so far."""
    ends: int = 0
    """Newlines that end a record."""
    blanks: int = 0
    start: int = 0
    """Offset where the current record starts."""
    start_line: int = 1
    prev: int = -1
    """The previous chunk's last byte (-1 before the first)."""
    pending: str = ""
    """A check that needs the next chunk's first byte: 'close' (a closing quote) or 'cr'."""
    pending_line: int = 0
    head: bytes = field(default=b"")
    blank_at: list[int] = field(default_factory=list)
    crlf: bool | None = None
    """Whether the header line ends in CRLF (None until it ended)."""
    mixed_at: int = 0

    def feed(self, chunk: bytes) -> None:
        import numpy as np

        a = np.frombuffer(chunk, dtype=np.uint8)
        n = len(a)
        if len(self.head) < 3:
            self.head += chunk[: 3 - len(self.head)]
        if self.pending:
            self._resolve(int(a[0]))
        qp = np.flatnonzero(a == _QUOTE)
        nl = np.flatnonzero(a == _NL)
        # A newline ends a record when an even number of quotes precede it in the file.
        at_end = ((self.quotes + np.searchsorted(qp, nl)) & 1) == 0
        if len(qp):
            self._check_quotes(a, qp, nl)
        if _CR in chunk:
            cp = np.flatnonzero(a == _CR)
            cp = cp[((self.quotes + np.searchsorted(qp, cp)) & 1) == 0]
            self._check_crs(a, cp, nl)
        end_idx = np.flatnonzero(at_end)
        ends = nl[end_idx] + self.pos
        if len(ends):
            starts = np.concatenate(([self.start], ends[:-1] + 1))
            lengths = ends - starts
            longest = int(np.argmax(lengths))
            if lengths[longest] > MAX_RECORD_BYTES:
                line = (
                    self.start_line if longest == 0 else self.lines + int(end_idx[longest - 1]) + 2
                )
                raise self._too_long(line)
            idx = ends - 1 - self.pos
            before = np.where(idx >= 0, a[np.maximum(idx, 0)], self.prev)
            crlf = before == _CR
            if self.crlf is None:
                self.crlf = bool(crlf[0])
            if not self.mixed_at:
                other = np.flatnonzero(crlf != self.crlf)
                if len(other):
                    self.mixed_at = self.lines + int(end_idx[other[0]]) + 1
            blank = (lengths == 0) | ((lengths == 1) & crlf)
            where = np.flatnonzero(blank)
            if len(where):
                self.blanks += len(where)
                self.blank_at.extend((where + self.ends + 1).tolist())
            self.ends += len(ends)
            self.start = int(ends[-1]) + 1
            self.start_line = self.lines + int(end_idx[-1]) + 2
        self.quotes += len(qp)
        self.lines += len(nl)
        self.pos += n
        self.prev = int(a[-1])
        # The open record is measured too, so an unclosed quote fails after 8 MiB, not at EOF.
        if self.pos - self.start > MAX_RECORD_BYTES + 1:
            raise self._too_long(self.start_line)

    def _too_long(self, line: int) -> InputError:
        limit = MAX_RECORD_BYTES // (1024 * 1024)
        return _fail(
            self.path,
            line,
            f"the record starting here is longer than {limit} MiB (no record may be that large; "
            "an unclosed '\"' makes the rest of the file one record)",
        )

    def _line_of(self, nl: Any, offset: int) -> int:
        import numpy as np

        return self.lines + int(np.searchsorted(nl, offset)) + 1

    def _check_quotes(self, a: Any, qp: Any, nl: Any) -> None:
        import numpy as np

        n = len(a)
        opening = ((self.quotes + np.arange(len(qp))) & 1) == 0
        prev = np.where(qp > 0, a[np.maximum(qp - 1, 0)], self.prev)
        at_start = (qp + self.pos == 0) | ((qp + self.pos == 3) & (self.head == _BOM))
        ok_open = np.isin(prev, (_COMMA, _NL, _QUOTE)) | at_start
        nxt = a[np.minimum(qp + 1, n - 1)]
        ok_close = np.isin(nxt, (_COMMA, _NL, _CR, _QUOTE)) | (qp == n - 1)
        bad = np.flatnonzero(np.where(opening, ~ok_open, ~ok_close))
        if len(bad):
            line = self._line_of(nl, int(qp[bad[0]]))
            where = "inside an unquoted field" if opening[bad[0]] else "after a closing quote"
            raise _fail(
                self.path,
                line,
                f"a '\"' {where} (RFC 4180 allows quotes only around a whole field, doubled "
                "inside it; readers disagree on anything else)",
            )
        if qp[-1] == n - 1 and not opening[-1]:
            self.pending = "close"
            self.pending_line = self.lines + len(nl) + 1

    def _check_crs(self, a: Any, cp: Any, nl: Any) -> None:
        import numpy as np

        n = len(a)
        if not len(cp):
            return
        lone = np.flatnonzero((a[np.minimum(cp + 1, n - 1)] != _NL) & (cp < n - 1))
        if len(lone):
            raise self._lone_cr(self._line_of(nl, int(cp[lone[0]])))
        if cp[-1] == n - 1:
            self.pending = "cr"
            self.pending_line = self.lines + len(nl) + 1

    def _lone_cr(self, line: int) -> InputError:
        return _fail(
            self.path,
            line,
            "a carriage return (\\r) that does not end the line (CR-only line endings, or a "
            "stray CR outside quotes); use LF or CRLF line endings and quote such a field",
        )

    def _resolve(self, first: int) -> None:
        kind, self.pending = self.pending, ""
        if kind == "close" and first not in (_COMMA, _NL, _CR, _QUOTE):
            raise _fail(
                self.path,
                self.pending_line,
                "a '\"' after a closing quote (RFC 4180 allows quotes only around a whole "
                "field, doubled inside it; readers disagree on anything else)",
            )
        if kind == "cr" and first != _NL:
            raise self._lone_cr(self.pending_line)

    def finish(self) -> Census:
        # A lone '\r' as the file's last byte ends its last line, as readers take it.
        tail = self.pos - self.start
        if tail == 1 and self.prev == _CR:
            self.blanks += 1
            self.blank_at.append(self.ends + 1)
        records = self.ends + (1 if tail else 0) - self.blanks - 1
        lines = self.lines + (1 if self.pos and self.prev != _NL else 0)
        open_quote = bool(self.quotes & 1)
        return Census(
            self.path,
            self.pos,
            lines,
            self.blanks,
            self.quotes,
            max(0, records),
            multiline=open_quote or self.ends != self.lines,
            open_quote=open_quote,
            blank_at=tuple(self.blank_at),
            ends_with_newline=self.pos == 0 or self.prev == _NL,
            mixed_endings_at=self.mixed_at,
        )


_SPECIAL = re.compile(b'["\r\n]')


class _PlainScanner(_Scanner):
    """The same census without numpy, for a Python that lacks it (an EMR image whose bootstrap
    could not install it): one Python step per quote, CR and newline, so some times slower, and
    the same counts and errors (tested against ``_Scanner`` on generated files)."""

    def feed(self, chunk: bytes) -> None:
        n = len(chunk)
        if len(self.head) < 3:
            self.head += chunk[: 3 - len(self.head)]
        if self.pending:
            self._resolve(chunk[0])
        quotes, nls, ends = self.quotes, 0, 0
        bad_quote = lone_cr = too_long = 0
        bad_quote_open = False
        start, start_line = self.start, self.start_line
        for m in _SPECIAL.finditer(chunk):
            i = m.start()
            c = chunk[i]
            before = chunk[i - 1] if i else self.prev
            if c == _QUOTE:
                opening = (quotes & 1) == 0
                quotes += 1
                if bad_quote:
                    continue
                if opening:
                    at_start = self.pos + i == 0 or (self.pos + i == 3 and self.head == _BOM)
                    if before not in (_COMMA, _NL, _QUOTE) and not at_start:
                        bad_quote, bad_quote_open = self.lines + nls + 1, True
                elif i < n - 1 and chunk[i + 1] not in (_COMMA, _NL, _CR, _QUOTE):
                    bad_quote = self.lines + nls + 1
                continue
            if c == _CR:
                if quotes & 1 or lone_cr:
                    continue
                if i < n - 1 and chunk[i + 1] != _NL:
                    lone_cr = self.lines + nls + 1
                continue
            nls += 1
            if quotes & 1:
                continue
            end = self.pos + i
            length = end - start
            if length > MAX_RECORD_BYTES and not too_long:
                too_long = start_line
            crlf = before == _CR
            if self.crlf is None:
                self.crlf = crlf
            if not self.mixed_at and crlf != self.crlf:
                self.mixed_at = self.lines + nls
            if length == 0 or (length == 1 and crlf):
                self.blanks += 1
                self.blank_at.append(self.ends + ends + 1)
            ends += 1
            start, start_line = end + 1, self.lines + nls + 1
        if bad_quote:
            where = "inside an unquoted field" if bad_quote_open else "after a closing quote"
            raise _fail(
                self.path,
                bad_quote,
                f"a '\"' {where} (RFC 4180 allows quotes only around a whole field, doubled "
                "inside it; readers disagree on anything else)",
            )
        if lone_cr:
            raise self._lone_cr(lone_cr)
        if too_long:
            raise self._too_long(too_long)
        last = chunk[-1]
        if last == _QUOTE and quotes & 1 == 0:
            self.pending, self.pending_line = "close", self.lines + nls + 1
        elif last == _CR and quotes & 1 == 0:
            self.pending, self.pending_line = "cr", self.lines + nls + 1
        self.ends += ends
        self.start, self.start_line = start, start_line
        self.quotes, self.lines, self.pos, self.prev = quotes, self.lines + nls, self.pos + n, last
        if self.pos - self.start > MAX_RECORD_BYTES + 1:
            raise self._too_long(self.start_line)


def _new_scanner(path: str) -> _Scanner:
    try:
        import numpy  # noqa: F401
    except ImportError:
        log.warning("numpy is not installed: counting %s's records without it (slower)", path)
        return _PlainScanner(path)
    return _Scanner(path)


def census(path: str, chunks: Iterable[bytes]) -> Census:
    """Count one file's records from its (compressed) byte stream; raise on what cannot count."""
    data = _gunzip(path, chunks) if path.lower().endswith(".gz") else chunks
    scanner = _new_scanner(path)
    for chunk in data:
        if chunk:
            scanner.feed(chunk)
    return scanner.finish()


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


def byte_chunks(path: str) -> Iterator[bytes]:
    """A local or s3:// file's bytes, decompressed when it is a .gz, in chunks."""
    from clickstream import s3

    chunks = _s3_chunks(path) if s3.is_s3(path) else _local_chunks(path)
    return _gunzip(path, chunks) if path.lower().endswith(".gz") else chunks


def escaped_raw(record: bytes) -> str:
    r"""A quarantined record's raw text: its bytes as UTF-8, each byte that is not UTF-8 written
    ``\xNN`` and each backslash doubled (so a literal ``\xff`` reads ``\\xff``); line-end
    characters at its end removed. The same on both engines: undecodable records are decoded
    here, from the file's bytes, whatever engine read them.

    >>> escaped_raw(b'a\\b,\xc3x,\xc3\xa9?\r')
    'a\\\\b,\\xc3x,é?'
    """
    text = record.rstrip(b"\r\n").replace(b"\\", b"\\\\")
    return text.decode("utf-8", "backslashreplace")


def raw_records(path: str, lines: list[int], limit: int) -> dict[int, bytes]:
    """The records at logical ``lines`` (1-based, newlines inside quotes not counted, as
    DuckDB's reader numbers them), each as its bytes up to its own newline or at most ``limit``
    bytes. One pass over the file; quotes and newlines found with numpy, as in the census
    (without numpy, one Python step per quote and newline)."""
    try:
        import numpy as np
    except ImportError:
        return _raw_records_plain(path, lines, limit)

    want = sorted(set(lines))
    starts: list[int] = []  # offsets of want[:len(starts)]
    windows: dict[int, bytes] = {}
    quotes = ends = pos = done = 0
    buf, buf_start = b"", 0
    for chunk in byte_chunks(path):
        a = np.frombuffer(chunk, dtype=np.uint8)
        qp = np.flatnonzero(a == _QUOTE)
        nl = np.flatnonzero(a == _NL)
        at_end = nl[((quotes + np.searchsorted(qp, nl)) & 1) == 0] + pos
        # Line L starts right after the (L-1)-th newline that ends a record.
        while len(starts) < len(want) and want[len(starts)] - 1 <= ends + len(at_end):
            n = want[len(starts)] - 1
            starts.append(0 if n == 0 else int(at_end[n - ends - 1]) + 1)
        quotes, ends, pos = quotes + len(qp), ends + len(at_end), pos + len(a)
        buf += chunk
        while done < len(starts) and pos >= starts[done] + limit:
            windows[want[done]] = _record_at(buf, starts[done] - buf_start, limit)
            done += 1
        keep = starts[done] if done < len(starts) else pos
        buf, buf_start = buf[keep - buf_start :], keep
    for j in range(done, len(starts)):
        windows[want[j]] = _record_at(buf, starts[j] - buf_start, limit)
    return windows


_QUOTE_OR_NL = re.compile(b'["\n]')


def _raw_records_plain(path: str, lines: list[int], limit: int) -> dict[int, bytes]:
    """``raw_records`` without numpy."""
    want = set(lines)
    out: dict[int, bytes] = {}
    line, quotes = 1, 0
    buf: bytearray | None = bytearray() if 1 in want else None
    for chunk in byte_chunks(path):
        seg = 0
        for m in _QUOTE_OR_NL.finditer(chunk):
            if chunk[m.start()] == _QUOTE:
                quotes += 1
                continue
            if quotes & 1:
                continue
            if buf is not None:
                buf += chunk[seg : m.start()][: max(0, limit - len(buf))]
                out[line] = bytes(buf)
            line += 1
            seg = m.start() + 1
            buf = bytearray() if line in want else None
            if len(out) == len(want):
                return out
        if buf is not None:
            buf += chunk[seg:][: max(0, limit - len(buf))]
    if buf is not None:
        out[line] = bytes(buf)
    return out


def _record_at(buf: bytes, at: int, limit: int) -> bytes:
    """The record starting at ``buf[at]``, at most ``limit`` bytes (a small slice first:
    records are short, and copying ``limit`` bytes for each would dominate)."""
    small = buf[at : at + min(limit, 4096)]
    record = _first_record(small)
    return record if len(record) < len(small) else _first_record(buf[at : at + limit])


def _first_record(data: bytes) -> bytes:
    """``data`` up to the first newline preceded by an even number of '"' (RFC 4180)."""
    quotes, start = 0, 0
    nl = data.find(b"\n")
    while nl >= 0:
        quotes += data.count(b'"', start, nl)
        if quotes % 2 == 0:
            return data[:nl]
        start, nl = nl, data.find(b"\n", nl + 1)
    return data


def take_census(paths: list[str], workers: int = 4) -> dict[str, Census]:
    """Census of every file, several at once (zlib and file reads release the GIL)."""
    from clickstream import s3

    def one(path: str) -> Census:
        return census(path, _s3_chunks(path) if s3.is_s3(path) else _local_chunks(path))

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(paths)))) as pool:
        return {c.path: c for c in pool.map(one, paths)}
