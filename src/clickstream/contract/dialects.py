"""The few functions whose meaning differs between engines.

The contract (``rules.py``) is written once, in DuckDB's SQL dialect. Spark runs the same text
transpiled by sqlglot; where a function's *semantics* differ (not just its name, which sqlglot
handles), the contract calls one of these hooks. Hook output is DuckDB-dialect text too, so the
whole contract goes through the transpiler in one piece.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class SqlFunctions(Protocol):
    @property
    def name(self) -> str: ...

    def trim_ws(self, x: str) -> str:
        """Strip spaces, tabs, CR and LF from both ends."""

    def matches(self, x: str, pattern: str) -> str:
        """TRUE when the regex matches somewhere in x (anchor it to match whole strings)."""

    def form_decode(self, x: str) -> str:
        """HTML-form decoding ('+' is a space, then %XX); what does not decode stays as written."""

    def micros_to_timestamp(self, x: str) -> str:
        """Microseconds since the Unix epoch -> TIMESTAMP (UTC wall clock)."""

    def redact_userinfo(self, x: str) -> str:
        """Remove every 'user:password@' that follows a 'scheme://'."""

    def first_wins_map(self, pairs: str, keys: str, value: str) -> str:
        """A list of {k, v} structs -> MAP(k, value), keeping the first of a repeated key.

        ``keys`` is the list of the pairs' keys, in order; ``value`` is an expression of ``p.v``.
        """

    def element(self, items: str, position: str) -> str:
        """The item at a 1-based position, NULL when the position is NULL or 0 (not found)."""


#: Characters the contract trims, as portable SQL (no engine-specific escape syntax).
WS_CHARS = "chr(32) || chr(9) || chr(13) || chr(10)"

#: scheme://user:pw@ -> captures the scheme part; the credentials run up to the last '@' before
#: the path/query/fragment and never cross whitespace, quotes or a field separator.
_USERINFO_RE = r"([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s\",@]*(@[^/?#\s\",@]*)*@"


@dataclass(frozen=True)
class DuckDBFunctions:
    name: str = "duckdb"

    def trim_ws(self, x: str) -> str:
        return f"trim({x}, {WS_CHARS})"

    def matches(self, x: str, pattern: str) -> str:
        return f"regexp_matches({x}, '{pattern}')"

    def form_decode(self, x: str) -> str:
        # url_decode leaves malformed escapes ('100%off') alone but raises on bytes that are not
        # UTF-8; try() turns that into NULL and we fall back to the value as written.
        plus = f"replace({x}, '+', ' ')"
        decoded = f"coalesce(try(url_decode({plus})), {x})"
        # Most keys and values hold nothing to decode; skipping them is much cheaper than try().
        return f"CASE WHEN contains({x}, '%') OR contains({x}, '+') THEN {decoded} ELSE {x} END"

    def micros_to_timestamp(self, x: str) -> str:
        return f"make_timestamp({x})"

    def redact_userinfo(self, x: str) -> str:
        return f"regexp_replace({x}, '{_USERINFO_RE}', '\\1', 'g')"

    def first_wins_map(self, pairs: str, keys: str, value: str) -> str:
        # Maps refuse duplicate keys: keep each key's first position (lambda index base differs).
        firsts = (
            f"list_filter({pairs}, (p, i) -> array_position({keys}, p.k) = i{self._index_shift})"
        )
        return f"map_from_entries(list_transform({firsts}, p -> {{'key': p.k, 'value': {value}}}))"

    _index_shift = ""

    def element(self, items: str, position: str) -> str:
        return f"{items}[{position}]"


@dataclass(frozen=True)
class SparkFunctions(DuckDBFunctions):
    """Spark's semantics, still spelled in DuckDB's dialect (the text is transpiled afterwards)."""

    name: str = "spark"
    #: Spark numbers lambda indexes from 0.
    _index_shift = " + 1"

    def form_decode(self, x: str) -> str:
        # java.net.URLDecoder (behind url_decode) rejects a '%' without two hex digits, so such a
        # '%' is escaped first and survives as written. Bytes that are not UTF-8 come back as
        # U+FFFD; then the value is kept as written, as on DuckDB.
        escaped = f"regexp_replace({x}, '%(?![0-9A-Fa-f]{{2}})', '%25')"
        decoded = f"url_decode({escaped})"
        broken = f"contains({decoded}, '\ufffd') AND NOT contains({x}, '\ufffd')"
        body = f"CASE WHEN {broken} THEN {x} ELSE {decoded} END"
        return f"CASE WHEN contains({x}, '%') OR contains({x}, '+') THEN {body} ELSE {x} END"

    def micros_to_timestamp(self, x: str) -> str:
        # The engine casts the result to TIMESTAMP_NTZ, matching DuckDB's zone-less TIMESTAMP.
        return f"timestamp_micros({x})"

    def redact_userinfo(self, x: str) -> str:
        return f"regexp_replace({x}, '{_USERINFO_RE}', '$1')"

    def element(self, items: str, position: str) -> str:
        # array_position returns 0 when absent, and element_at(.., 0) is an error on Spark.
        return f"CASE WHEN {position} > 0 THEN element_at({items}, CAST({position} AS INTEGER)) END"


DUCKDB = DuckDBFunctions()
SPARK = SparkFunctions()
