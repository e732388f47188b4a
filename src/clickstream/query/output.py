"""Query results printed faithfully and safely: table, CSV or JSON, streamed batch by batch.

- Data is never markup: table cells are ``rich.text.Text``; control characters (and the
  bidirectional overrides) are shown escaped (``\\x1b``), so data cannot drive the terminal.
- JSON is RFC 8259: NaN and ±Infinity become null, bytes become base64 strings, decimals stay
  exact numbers, and duplicate column names get a ``_2``/``_3`` suffix so none is lost.
- CSV writes nested values (LIST, STRUCT, MAP) as JSON text.
- Results arrive as Arrow record batches; CSV and JSON hold one batch in memory at a time, the
  table holds at most ``TABLE_MAX_ROWS`` rows (it needs every row to size its columns).

This module imports nothing heavy at load time: the CLI's error printer uses :func:`printable`.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any

FORMATS = ("table", "csv", "json")
#: Rows a table shows at most (csv/json stream every row).
TABLE_MAX_ROWS = 10_000

_UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def printable(text: str) -> str:
    """``text`` with control characters escaped (newlines kept); safe for a terminal.

    >>> printable("a\\x1b]0;PWNED\\x07b")
    'a\\\\x1b]0;PWNED\\\\x07b'
    """

    def esc(m: re.Match[str]) -> str:
        code = ord(m.group(0))
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNSAFE.sub(esc, text)


def distinct_names(columns: list[str]) -> list[str]:
    """Column names made unique: ``a, a`` -> ``a, a_2``.

    >>> distinct_names(["a", "a", "a_2"])
    ['a', 'a_3', 'a_2']
    """
    taken = set(columns)
    used: set[str] = set()
    out = []
    for name in columns:
        new, n = name, 1
        while new in used or (new != name and new in taken):
            n += 1
            new = f"{name}_{n}"
        used.add(new)
        out.append(new)
    return out


def _json(value: Any) -> str:
    """A value from Arrow as RFC 8259 JSON text (decimals keep their exact digits)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    if isinstance(value, decimal.Decimal):
        return str(value) if value.is_finite() else "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes | bytearray | memoryview):
        return json.dumps(base64.b64encode(bytes(value)).decode("ascii"))
    if isinstance(value, dt.datetime):
        return json.dumps(value.isoformat(sep=" "))
    if isinstance(value, dict):
        return _object((str(k), v) for k, v in value.items())
    if isinstance(value, list | tuple):
        if value and all(isinstance(x, tuple) and len(x) == 2 for x in value):
            # Arrow gives a MAP as (key, value) pairs: an object keyed by the key's text.
            return _object((k if isinstance(k, str) else _json(k), v) for k, v in value)
        return "[" + ", ".join(_json(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # date, time, interval, uuid, ...


def _object(items: Iterable[tuple[str, Any]]) -> str:
    return "{" + ", ".join(json.dumps(k, ensure_ascii=False) + ": " + _json(v)
                           for k, v in items) + "}"  # fmt: skip


def _text(value: Any) -> str:
    """A value as CSV/table text: nested values as JSON, bytes as base64, NULL as ''."""
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        return _json(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _rows(batches: Iterable[Any]) -> Iterator[list[Any]]:
    """Rows of Python values, one batch converted at a time (duplicate names kept apart)."""
    for batch in batches:
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        yield from (list(row) for row in zip(*columns, strict=True))


def write_csv(columns: list[str], batches: Iterable[Any], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    n = 0
    for row in _rows(batches):
        writer.writerow([_text(v) for v in row])
        n += 1
    return n


def write_json(columns: list[str], batches: Iterable[Any], out: IO[str]) -> int:
    keys = distinct_names(columns)
    out.write("[")
    n = 0
    for row in _rows(batches):
        out.write(("\n" if n == 0 else ",\n") + _object(zip(keys, row, strict=True)))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def write_table(columns: list[str], batches: Iterable[Any], console: Any) -> tuple[int, bool]:
    """Print a table of at most TABLE_MAX_ROWS rows; returns (rows shown, whether cut)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False)
    for name in columns:
        table.add_column(Text(printable(name)))
    n, cut = 0, False
    for row in _rows(batches):
        if n == TABLE_MAX_ROWS:
            cut = True
            break
        table.add_row(*(Text("NULL" if v is None else printable(_text(v))) for v in row))
        n += 1
    console.print(table, markup=False, highlight=False)
    return n, cut
