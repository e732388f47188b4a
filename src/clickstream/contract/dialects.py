"""The few functions whose spelling differs between engines.

The contract (``rules.py``) is written once in portable SQL; where DuckDB and Spark disagree on a
function's name or semantics, it calls one of these hooks instead. Everything else is shared text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class SqlFunctions(Protocol):
    name: str

    def trim_ws(self, x: str) -> str:
        """Strip spaces, tabs, CR and LF from both ends."""

    def matches(self, x: str, pattern: str) -> str:
        """TRUE when the regex matches somewhere in x (anchor it to match whole strings)."""

    def form_decode(self, x: str) -> str:
        """HTML-form decoding: '+' is a space, then percent-decoding; undecodable stays as written."""

    def micros_to_timestamp(self, x: str) -> str:
        """Microseconds since the Unix epoch -> TIMESTAMP (UTC wall clock)."""

    def redact_userinfo(self, x: str) -> str:
        """Remove every 'user:password@' that follows a 'scheme://'."""

    def first_wins_map(self, pairs: str, keys: str, value: str) -> str:
        """A list of {k, v} structs -> MAP(k, value), keeping the first of a repeated key.

        ``keys`` is the list of the pairs' keys, in order; ``value`` is an expression of ``p.v``.
        """


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
        # DuckDB refuses duplicate map keys; keep each key's first position (lambda index is 1-based).
        firsts = f"list_filter({pairs}, (p, i) -> list_position({keys}, p.k) = i)"
        return f"map_from_entries(list_transform({firsts}, p -> {{'key': p.k, 'value': {value}}}))"


DUCKDB = DuckDBFunctions()
