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
import functools
import io
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import IO, Any

from clickstream.errors import QueryError

FORMATS = ("table", "csv", "json")
#: Rows a table shows at most (csv/json stream every row).
TABLE_MAX_ROWS = 10_000

#: Unicode categories shown escaped: control characters, format characters (bidi controls,
#: zero-width spaces and joiners, soft hyphen, BOM, tag characters, ...), line and paragraph
#: separators and lone surrogates: each could hide or reorder text. Not unassigned code points
#: (Cn): to Python 3.11's Unicode 14 that is every newer emoji, which terminals show.
_HIDDEN = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))


def unprintable(why: str) -> QueryError:
    """The one-line error for a result value no printer can write (and the way round it)."""
    return QueryError(
        f"the result cannot be printed: {why} (cast that column to VARCHAR in the query)"
    )


def printable(text: str) -> str:
    """``text`` with control characters escaped (newlines kept); safe for a terminal.

    >>> printable("a\\x1b]0;PWNED\\x07b")
    'a\\\\x1b]0;PWNED\\\\x07b'
    """

    if text.isprintable():  # the common case, in C: no control, format or separator character
        return text
    return "".join(_escaped(c) for c in text)


def _escaped(char: str) -> str:
    if char == "\n" or unicodedata.category(char) not in _HIDDEN:
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


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


class _DuckValue:
    """A value DuckDB turned into text itself: its text (``CAST AS VARCHAR``; JSON for nested
    values) and its ``to_json``, which may hold NaN or Infinity (a JSON value, a nested FLOAT)."""

    __slots__ = ("json", "text")

    def __init__(self, text: str, json_text: str) -> None:
        self.text, self.json = text, json_text

    def strict_json(self) -> str:
        """RFC 8259: every spelling of NaN and ±Infinity DuckDB accepts as null, the rest as
        DuckDB wrote it (``to_json`` text is otherwise strict: minified, no trailing comma)."""
        return _NON_FINITE.sub(_keep_strings, self.json)


#: A JSON string (kept), or a non-finite number as DuckDB's JSON reader accepts it (any case).
_NON_FINITE = re.compile(r'"(?:[^"\\]|\\.)*"|-?(?i:nan|inf(?:inity)?)')


def _keep_strings(m: re.Match[str]) -> str:
    return m.group(0) if m.group(0).startswith('"') else "null"


def _decimal(value: decimal.Decimal) -> str:
    """Plain digits (``0.0000001``, never ``1E-7``); NaN and infinities as null."""
    return f"{value:f}" if value.is_finite() else "null"


def _json(value: Any) -> str:
    """A value from Arrow as RFC 8259 JSON text (decimals keep their exact digits)."""
    if value is None:
        return "null"
    if isinstance(value, _DuckValue):
        return value.strict_json()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes | bytearray | memoryview):
        return json.dumps(base64.b64encode(bytes(value)).decode("ascii"))
    if isinstance(value, dt.datetime):
        return json.dumps(value.isoformat(sep=" "))
    if _is_interval(value):
        return json.dumps(_interval(value))
    if isinstance(value, dict):
        return _object((str(k), v) for k, v in value.items())
    if isinstance(value, list | tuple):
        if value and all(isinstance(x, tuple) and len(x) == 2 for x in value):
            # Arrow gives a MAP as (key, value) pairs: an object keyed by the key's text.
            return _object((k if isinstance(k, str) else _json(k), v) for k, v in value)
        return "[" + ",".join(_json(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # date, time, interval, uuid, ...


def _is_interval(value: Any) -> bool:
    return type(value).__name__ == "MonthDayNano"


def _interval(value: Any) -> str:
    """An INTERVAL as ISO 8601 (``P1M2DT3.5S``).

    >>> import pyarrow as pa
    >>> _interval(pa.scalar((1, 2, 3_500_000_000), pa.month_day_nano_interval()).as_py())
    'P1M2DT3.5S'
    """
    months, days, nanos = value.months, value.days, value.nanoseconds
    seconds = decimal.Decimal(nanos) / 1_000_000_000
    text = "P" + (f"{months}M" if months else "") + (f"{days}D" if days else "")
    if nanos:
        text += f"T{seconds.normalize():f}S"
    return text if text != "P" else "PT0S"


def _object(items: Iterable[tuple[str, Any]]) -> str:
    return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _json(v)
                           for k, v in items) + "}"  # fmt: skip


def _text(value: Any) -> str:
    """A value as CSV/table text: nested values as JSON, bytes as base64, NULL as ''."""
    if value is None:
        return ""
    if isinstance(value, _DuckValue):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"  # as DuckDB and the CSV writer say it
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if _is_interval(value):
        return _interval(value)
    if isinstance(value, dict | list | tuple):
        return _json(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _ns_as_text(kind: Any) -> Any:
    """The type with every nanosecond timestamp, time and duration in it (nested too) as text:
    Python's datetime stops at microseconds, and pyarrow would need pandas for the rest."""
    import pyarrow as pa

    t = pa.types
    if (t.is_timestamp(kind) or t.is_time64(kind) or t.is_duration(kind)) and kind.unit == "ns":
        return pa.string()
    if t.is_map(kind):
        return pa.map_(_ns_as_text(kind.key_type), _ns_as_text(kind.item_type))
    if t.is_list(kind) or t.is_large_list(kind):
        make = pa.list_ if t.is_list(kind) else pa.large_list
        return make(pa.field(kind.value_field.name, _ns_as_text(kind.value_type)))
    if t.is_fixed_size_list(kind):
        value = pa.field(kind.value_field.name, _ns_as_text(kind.value_type))
        return pa.list_(value, kind.list_size)
    if t.is_struct(kind):
        return pa.struct([pa.field(f.name, _ns_as_text(f.type), f.nullable) for f in kind])
    return kind


def _is_bool8(kind: Any) -> bool:
    import pyarrow as pa

    return isinstance(kind, pa.BaseExtensionType) and kind.extension_name == "arrow.bool8"


def _children(kind: Any) -> list[Any]:
    """The types nested directly in ``kind`` (none for a leaf)."""
    import pyarrow as pa

    t = pa.types
    if t.is_map(kind):
        return [kind.key_type, kind.item_type]
    if t.is_list(kind) or t.is_large_list(kind) or t.is_fixed_size_list(kind):
        return [kind.value_type]
    if t.is_struct(kind) or t.is_union(kind):
        return [kind.field(i).type for i in range(kind.num_fields)]
    return []


def _nested(kind: Any) -> bool:
    return bool(_children(kind))


def _somewhere(kind: Any, test: Any) -> bool:
    """Whether ``test`` holds for the type or any type nested in it."""
    return bool(test(kind)) or any(_somewhere(child, test) for child in _children(kind))


def _duckdb_kind(kind: Any) -> bool:
    import pyarrow as pa

    return isinstance(kind, pa.BaseExtensionType) and not _is_bool8(kind)


def _exotic(kind: Any) -> bool:
    """Whether the type holds (at any depth) a UNION or one of DuckDB's own types that Arrow
    carries as an extension (HUGEINT, UHUGEINT, TIME WITH TIME ZONE, BIT, BIGNUM, UUID):
    only DuckDB itself can turn those into text."""
    import pyarrow as pa

    return _somewhere(kind, lambda k: pa.types.is_union(k) or _duckdb_kind(k))


def _leaves(array: Any) -> Iterator[Any]:
    """The arrays of leaf values under a (possibly nested) array."""
    import pyarrow as pa

    t = pa.types
    kind = array.type
    if t.is_dictionary(kind):
        yield from _leaves(array.dictionary)
    elif t.is_map(kind):
        yield from _leaves(array.keys)
        yield from _leaves(array.items)
    elif t.is_list(kind) or t.is_large_list(kind) or t.is_fixed_size_list(kind):
        yield from _leaves(array.flatten())
    elif t.is_struct(kind) or t.is_union(kind):
        for i in range(kind.num_fields):
            yield from _leaves(array.field(i))
    else:
        yield array


def _plain(column: Any) -> Any:
    """Dictionaries decoded and Arrow's bool8 (a BOOLEAN in lossless export) as bool; an
    INTERVAL the export wrapped refused (see :func:`_wrapped_intervals`)."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if _is_bool8(column.type):
        column = column.storage.cast(pa.bool_())
    if _somewhere(column.type, pa.types.is_interval) and _wrapped_intervals(column):
        raise unprintable(
            "an INTERVAL of more than 106,751 days in its time part overflows DuckDB's export of it"
        )
    return column


def _wrapped_intervals(column: Any) -> bool:
    """Whether DuckDB's export wrapped an INTERVAL: it holds microseconds and writes them as
    int64 nanoseconds, so a value past 2**63 ns comes out wrapped, no longer whole microseconds
    (2**64 is not a multiple of 1,000). Wraps by a multiple of 125 * 2**64 (a time part of over
    73,000 years) cannot be told from a real value."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    for leaf in _leaves(column):
        if not pa.types.is_interval(leaf.type) or len(leaf) == 0:
            continue
        # (int32 months, int32 days, int64 nanoseconds) per value
        words = np.frombuffer(leaf.buffers()[1], dtype=np.int64)
        nanos = words[2 * leaf.offset + 1 : 2 * (leaf.offset + len(leaf)) : 2]
        valid = pc.is_valid(leaf).to_numpy(zero_copy_only=False)
        if bool(np.any((nanos % 1000 != 0) & valid)):
            return True
    return False


def _pylist(column: Any) -> list[Any]:
    """An Arrow column as Python values, exactly: nanoseconds kept as text; DuckDB's infinite
    dates and timestamps, its own types and unions as DuckDB writes them."""
    import pyarrow as pa

    column = _plain(column)
    # A MAP too: Python gets (key, value) pairs, and an empty one is then an empty list.
    if _somewhere(column.type, pa.types.is_map) or _exotic(column.type):
        return _duckdb_values(column)
    if _out_of_range(column):
        return _duckdb_values(column)
    if pa.types.is_float32(column.type):  # its own shortest digits, as DuckDB prints it
        return list(_helper_select(column, "CAST(v AS VARCHAR)").to_pylist())
    kind = _ns_as_text(column.type)
    if kind != column.type:
        column = column.cast(kind)
    try:
        return list(column.to_pylist())
    except OverflowError:  # a date or time beyond Python's years 1-9999
        return _duckdb_values(column)


def _duckdb_values(column: Any) -> list[Any]:
    """DuckDB's own text of each value (see :class:`_DuckValue`): for the columns Python cannot
    convert faithfully (see :func:`_pylist`)."""
    nested = _nested(column.type)
    text = "to_json(v)::VARCHAR" if nested else "CAST(v AS VARCHAR)"
    texts, jsons = _helper_columns(column, [text, "to_json(v)::VARCHAR"])
    values: list[Any] = []
    for t, j in zip(texts.to_pylist(), jsons.to_pylist(), strict=True):
        if t is None:
            values.append(None)
            continue
        value = _DuckValue(t, j)
        if nested:  # JSON text in table and CSV too: strict, like every other nested value
            value.text = value.strict_json()
        values.append(value)
    return values


#: Days from 1970-01-01 to Python's (and Arrow's printers') first and past its last day.
_FIRST_DAY, _PAST_LAST_DAY = -719_162, 2_932_897
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
#: DuckDB's raw ±infinity of a timestamp (+ and - this).
_INFINITY = 2**63 - 1


def _bounds(kind: Any) -> tuple[int, int] | None:
    """The raw values a date, time or timestamp type holds within years 1-9999 (times within
    one day), or None for other types."""
    import pyarrow as pa

    t = pa.types
    if t.is_date32(kind):
        return _FIRST_DAY, _PAST_LAST_DAY - 1
    if t.is_timestamp(kind) or t.is_time(kind):
        per_day = 86_400 * _PER_SECOND[kind.unit]
        if t.is_time(kind):
            return 0, per_day - 1
        return _FIRST_DAY * per_day, _PAST_LAST_DAY * per_day - 1
    return None


def _out_of_range(column: Any) -> bool:
    """Whether the column holds (at any depth) a date, time or timestamp Python cannot hold
    and Arrow prints wrongly: DuckDB's ±infinity, years before 1 or after 9999, 24:00:00."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for leaf in _leaves(column):
        bounds = _bounds(leaf.type)
        if bounds is None or leaf.null_count == len(leaf):
            continue
        raw = leaf.view(pa.int64() if leaf.type.bit_width == 64 else pa.int32())
        low, high = (v.as_py() for v in pc.min_max(raw).values())
        # ±infinity of a TIMESTAMP_NS is within its bounds (years 1677-2262): checked apart.
        if low < bounds[0] or high > bounds[1] or max(-low, high) >= _INFINITY:
            return True
    return False


def _rows(batches: Iterable[Any]) -> Iterator[list[Any]]:
    """Rows of Python values, one batch converted at a time (duplicate names kept apart)."""
    for batch in batches:
        columns = [_pylist(batch.column(i)) for i in range(batch.num_columns)]
        yield from (list(row) for row in zip(*columns, strict=True))


def _arrow_writes(kind: Any) -> bool:
    """Whether pyarrow's CSV writer prints this type as is (vectorised, in C++)."""
    import pyarrow as pa

    t = pa.types
    return bool(
        t.is_integer(kind) or t.is_floating(kind) or t.is_decimal(kind) or t.is_string(kind)
        or t.is_large_string(kind) or t.is_boolean(kind) or t.is_date(kind) or t.is_time(kind)
        or t.is_timestamp(kind) or t.is_null(kind)
    )  # fmt: skip


def _simple_nested(kind: Any, top: bool = True) -> bool:
    """A LIST/ARRAY/STRUCT/MAP whose leaves are only strings, integers and booleans: DuckDB's
    ``to_json`` writes those exactly as :func:`_json` does (no NaN, BLOB or time formats)."""
    import pyarrow as pa

    t = pa.types
    if t.is_union(kind):
        return False
    if _nested(kind):
        return all(_simple_nested(child, False) for child in _children(kind))
    if top:
        return False
    return bool(
        t.is_string(kind) or t.is_integer(kind) or t.is_boolean(kind) or t.is_null(kind)
        or _is_bool8(kind)
    )  # fmt: skip


def _duckdb_own(kind: Any) -> bool:
    """A top-level value of a DuckDB type Arrow carries as an extension (HUGEINT, UUID, ...)."""
    return _exotic(kind) and not _nested(kind)


@functools.lru_cache(maxsize=1)
def _helper() -> Any:
    """A private DuckDB connection that only ever sees our own SQL over in-memory Arrow data."""
    import duckdb

    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "enable_external_access": False,
            "python_enable_replacements": False,
            "threads": 1,  # one small batch at a time: more threads only add memory
        }
    )
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    con.execute("SET lock_configuration = true")
    return con


def _helper_columns(column: Any, expressions: list[str]) -> list[Any]:
    """Each of ``expressions`` (our own SQL over ``v``) of each value of the column, in DuckDB."""
    import pyarrow as pa

    con = _helper().cursor()
    try:
        con.register("col", pa.table({"v": column}))
        result = con.execute(f"SELECT {', '.join(expressions)} FROM col").to_arrow_table()
        return [c.combine_chunks() for c in result.columns]
    finally:
        con.close()


def _helper_select(column: Any, expression: str) -> Any:
    """``expression`` (our own SQL over ``v``) of each value of the column, in DuckDB."""
    return _helper_columns(column, [expression])[0]


def _duckdb_json(column: Any) -> Any:
    """Nested values as JSON text, vectorised in DuckDB (``query_params`` on 3M rows)."""
    return _helper_select(column, "to_json(v)::VARCHAR")


def _unquoted_integers(texts: Any) -> Any:
    """Integer texts as a decimal column the CSV writer prints bare (76 digits at most)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    longest = pc.max(pc.utf8_length(texts)).as_py() or 0
    if longest > 77:  # a BIGNUM beyond 76 digits (Arrow's cast wraps past ~1,000 of them)
        return texts
    try:
        return texts.cast(pa.decimal256(76, 0))
    except pa.ArrowInvalid:  # 77 digits: quoted text
        return texts


def _plain_decimals(column: Any) -> Any:
    """A decimal column as is, or as DuckDB's text when Arrow would print one of its values in
    scientific notation (``1E-7`` for ``0.0000001``)."""
    import pyarrow.compute as pc

    if pc.any(pc.match_substring(column.cast("string"), "E")).as_py():
        return _helper_select(column, "CAST(v AS VARCHAR)")
    return column


def _csv_ready(batch: Any) -> Any:
    """The batch with each column the CSV writer cannot print (nested, BLOB, INTERVAL, ...)
    turned into text in Python: such columns are rare, the rest stays in Arrow."""
    import pyarrow as pa

    arrays = []
    for column in batch.columns:
        column = _plain(column)
        if _duckdb_own(column.type):
            integer = getattr(column.type, "type_name", "") in ("hugeint", "uhugeint", "bignum")
            column = _helper_select(column, "CAST(v AS VARCHAR)")
            if integer:  # digits, unquoted like every other number (up to 76 of them)
                column = _unquoted_integers(column)
        elif pa.types.is_decimal(column.type):
            column = _plain_decimals(column)
        elif _simple_nested(column.type):
            column = _duckdb_json(column)
        elif not _arrow_writes(column.type) or _out_of_range(column):
            texts = [None if v is None else _text(v) for v in _pylist(column)]
            column = pa.array(texts, pa.string())
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])


def write_csv(columns: list[str], batches: Iterable[Any], out: IO[str]) -> int:
    """RFC 4180 CSV: the header, then every batch written by Arrow's CSV writer."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(columns)
    out.write(header.getvalue())
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    sink = getattr(out, "buffer", None)
    n = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        buffer = pa.BufferOutputStream()
        pacsv.write_csv(_csv_ready(batch), buffer, options)
        data = buffer.getvalue().to_pybytes()
        if sink is not None:
            out.flush()
            sink.write(data)
        else:
            out.write(data.decode("utf-8"))
        n += batch.num_rows
    return n


def _json_expression(name: str, kind: Any) -> str | None:
    """DuckDB SQL giving a column's values as exact RFC 8259 text, or None for Python's turn."""
    import pyarrow as pa

    t = pa.types
    if t.is_float32(kind):  # its own shortest digits (0.1, not 0.10000000149011612)
        return f"CASE WHEN isfinite({name}) THEN CAST({name} AS VARCHAR) END"
    if t.is_floating(kind):
        return f"CASE WHEN isfinite({name}) THEN to_json({name}) END"  # NaN/Inf -> null
    if t.is_decimal(kind):
        return f"CAST({name} AS VARCHAR)"  # exact digits, a valid JSON number
    if t.is_binary(kind) or t.is_large_binary(kind) or t.is_fixed_size_binary(kind):
        return f"to_json(base64({name}))"
    if _duckdb_own(kind) and getattr(kind, "extension_name", "") == "arrow.json":
        return None  # a JSON value may hold NaN or Infinity: made strict in Python
    if (_arrow_writes(kind) and not t.is_time(kind)) or _simple_nested(kind) or _duckdb_own(kind):
        return f"to_json({name})"
    return None


def _json_rows(batch: Any, keys: list[str]) -> bytes:
    """The batch's rows as ``,\\n{...}`` JSON objects, built in DuckDB (vectorised)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from clickstream.sqltext import sql_literal

    arrays, parts = [], []
    for i, column in enumerate(batch.columns):
        name = f"c{i}"
        column = _plain(column)
        expression = _json_expression(name, column.type)
        if expression is None:  # INTERVAL, nested floats or BLOBs, ...: rare, done in Python
            column = pa.array([_json(v) for v in _pylist(column)], pa.string())
            expression = name
        arrays.append(column)
        key = json.dumps(keys[i]) + ":"  # ASCII: no NUL or control character reaches SQL
        parts.append(f"{sql_literal(key)}, coalesce({expression}, 'null')")
    con = _helper().cursor()
    try:
        con.register(
            "batch", pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
        )
        # Each row starts with its separator, so the batch's text is its rows concatenated;
        # one concat() call, as a chain of || nests one level per column (1,000 at most).
        sql = "SELECT concat(',\n{', " + ", ',', ".join(parts) + ", '}') FROM batch"
        rows = con.execute(sql).to_arrow_table().column(0).combine_chunks()
        whole = pc.binary_join(
            pa.ListArray.from_arrays(pa.array([0, len(rows)], pa.int32()), rows), ""
        )
        return bytes(whole[0].as_buffer())
    finally:
        con.close()


def write_json(columns: list[str], batches: Iterable[Any], out: IO[str]) -> int:
    """A JSON array of row objects, written batch by batch."""
    keys = distinct_names(columns)
    out.write("[")
    sink = getattr(out, "buffer", None)
    n = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        data = _json_rows(batch, keys) if keys else b",\n{}" * batch.num_rows
        if n == 0:
            data = data[1:]  # no separator before the first row
        if sink is not None:
            out.flush()
            sink.write(data)
        else:
            out.write(data.decode("utf-8"))
        n += batch.num_rows
    out.write("\n]\n" if n else "]\n")
    return n


def write_table(columns: list[str], batches: Iterable[Any], console: Any) -> tuple[int, bool]:
    """Print a table of at most TABLE_MAX_ROWS rows; returns (rows shown, whether cut)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False)
    for name in columns:
        table.add_column(Text(printable(name)), overflow="fold")  # never "…": every digit
    n, cut = 0, False
    for row in _rows(batches):
        if n == TABLE_MAX_ROWS:
            cut = True
            break
        table.add_row(*(Text("NULL" if v is None else printable(_text(v))) for v in row))
        n += 1
    console.print(table, markup=False, highlight=False)
    return n, cut
