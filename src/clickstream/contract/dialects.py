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

    def remove_matches(self, x: str, pattern: str) -> str:
        """x with every match of the regex removed."""

    def form_decode(self, x: str, remove: str | None = None) -> str:
        """HTML-form decoding ('+' is a space, then %XX); what does not decode stays as written.

        ``remove``: a regex whose matches are taken out of the decoded text.
        """

    def micros_to_timestamp(self, x: str) -> str:
        """Microseconds since the Unix epoch -> TIMESTAMP (UTC wall clock)."""

    def redact_userinfo(self, x: str) -> str:
        """Remove every 'user:password@' that follows a 'scheme://'."""

    def key_order(self, keys: str) -> str:
        """What ``first_wins_map`` needs precomputed from the keys (a column of its own)."""

    def first_wins_map(self, keys: str, values: str, order: str) -> str:
        """Parallel lists of keys and values -> MAP, keeping the first of a repeated key.

        ``order`` is the ``key_order`` column. Linear or n log n in the number of pairs: one
        URL may carry 100,000s of parameters.
        """

    def element(self, items: str, position: str) -> str:
        """The item at a 1-based position, NULL when the position is NULL or 0 (not found)."""

    def split_part(self, x: str, delimiter: str, part: int) -> str:
        """The 1st or 2nd piece of x split at a literal delimiter ('' when there is none)."""


#: Characters the contract trims, as portable SQL (no engine-specific escape syntax).
WS_CHARS = "chr(32) || chr(9) || chr(13) || chr(10)"

#: scheme://user:pw@ -> captures the scheme part; the credentials run up to the last '@' before
#: the path/query/fragment and never cross whitespace, quotes or a field separator.
_USERINFO_RE = r"([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s\",@]*(@[^/?#\s\",@]*)*@"


@dataclass(frozen=True)
class DuckDBFunctions:
    name: str = "duckdb"

    def trim_ws(self, x: str) -> str:
        # DuckDB's trim with a character set walks every string (~0.3 s per 1M values); testing
        # the two ends first is ~5x cheaper, and almost no field needs trimming.
        codes = (32, 9, 13, 10)
        ends = " OR ".join(f"ends_with({x}, chr({c}))" for c in codes)
        edge = f"ascii({x}) IN {codes} OR {ends}"
        return f"CASE WHEN {edge} THEN trim({x}, {WS_CHARS}) ELSE {x} END"

    def matches(self, x: str, pattern: str) -> str:
        return f"regexp_matches({x}, '{pattern}')"

    def remove_matches(self, x: str, pattern: str) -> str:
        return f"regexp_replace({x}, '{pattern}', '', 'g')"

    def form_decode(self, x: str, remove: str | None = None) -> str:
        # url_decode leaves malformed escapes ('100%off') alone but raises on bytes that are not
        # UTF-8; try() turns that into NULL and we fall back to the value as written.
        plus = f"replace({x}, '+', ' ')"
        decoded = f"coalesce(try(url_decode({plus})), {x})"
        if remove:
            # Only an escape decodes to what ``remove`` takes out (a URL holding a raw control
            # character is rejected), so the undecoded branch needs no regex.
            decoded = self.remove_matches(decoded, remove)
        # Most keys and values hold nothing to decode; skipping them is much cheaper than try().
        return f"CASE WHEN contains({x}, '%') OR contains({x}, '+') THEN {decoded} ELSE {x} END"

    def micros_to_timestamp(self, x: str) -> str:
        return f"make_timestamp({x})"

    def redact_userinfo(self, x: str) -> str:
        return f"regexp_replace({x}, '{_USERINFO_RE}', '\\1', 'g')"

    def key_order(self, keys: str) -> str:
        # (key, position) sorted, so a repeated key's first position heads its run; NULL when
        # no key repeats (the usual case: a hash-based distinct is cheaper than the sort).
        return (
            f"CASE WHEN len(list_distinct({keys})) < len({keys}) "
            f"THEN list_sort(list_transform({keys}, (k, i) -> {{'k': k, 'i': i}})) END"
        )

    def first_wins_map(self, keys: str, values: str, order: str) -> str:
        # Maps refuse duplicate keys. Keep the head of each key's run in the sorted order, then
        # restore the written order: n log n (a search per pair was quadratic: 24 s for one URL
        # with 180,000 parameters).
        heads = f"list_filter({order}, (x, j) -> j = 1 OR {order}[j - 1].k <> x.k)"
        positions = f"list_sort(list_transform({heads}, x -> x.i))"
        picked_keys = f"list_transform({positions}, i -> {keys}[i])"
        picked_values = f"list_transform({positions}, i -> {values}[i])"
        return (
            f"CASE WHEN {order} IS NULL THEN map({keys}, {values}) "
            f"ELSE map({picked_keys}, {picked_values}) END"
        )

    def element(self, items: str, position: str) -> str:
        return f"{items}[{position}]"

    def split_part(self, x: str, delimiter: str, part: int) -> str:
        return f"split_part({x}, {delimiter}, {part})"


@dataclass(frozen=True)
class SparkFunctions(DuckDBFunctions):
    """Spark's semantics, still spelled in DuckDB's dialect (the text is transpiled afterwards)."""

    name: str = "spark"

    def trim_ws(self, x: str) -> str:
        return f"trim({x}, {WS_CHARS})"

    def key_order(self, keys: str) -> str:
        return "NULL"

    def remove_matches(self, x: str, pattern: str) -> str:
        # Spark's regexp_replace always replaces every match (no flags argument).
        return f"regexp_replace({x}, '{pattern}', '')"

    def first_wins_map(self, keys: str, values: str, order: str) -> str:
        # The session runs with spark.sql.mapKeyDedupPolicy=LAST_WIN (engines/spark.py), so
        # the reversed lists keep each key's first value, in one linear pass.
        return f"map(reverse({keys}), reverse({values}))"

    def form_decode(self, x: str, remove: str | None = None) -> str:
        # java.net.URLDecoder (behind url_decode) rejects a '%' without two hex digits, so such a
        # '%' is escaped first and survives as written. Bytes that are not UTF-8 come back as
        # U+FFFD; then the value is kept as written, as on DuckDB.
        escaped = f"regexp_replace({x}, '%(?![0-9A-Fa-f]{{2}})', '%25')"
        decoded = f"url_decode({escaped})"
        broken = f"contains({decoded}, '\ufffd') AND NOT contains({x}, '\ufffd')"
        if remove:
            decoded = self.remove_matches(decoded, remove)
        body = f"CASE WHEN {broken} THEN {x} ELSE {decoded} END"
        return f"CASE WHEN contains({x}, '%') OR contains({x}, '+') THEN {body} ELSE {x} END"

    def micros_to_timestamp(self, x: str) -> str:
        # The engine casts the result to TIMESTAMP_NTZ, matching DuckDB's zone-less TIMESTAMP.
        return f"timestamp_micros({x})"

    def redact_userinfo(self, x: str) -> str:
        return f"regexp_replace({x}, '{_USERINFO_RE}', '$1')"

    def split_part(self, x: str, delimiter: str, part: int) -> str:
        # Spark's split_part compiles a regex on every call (a tenth of the contract's time);
        # substring_index searches the literal.
        if part == 1:
            return f"substring_index({x}, {delimiter}, 1)"
        assert part == 2, "only the first two pieces are rendered"
        second = f"substring_index(substring_index({x}, {delimiter}, 2), {delimiter}, -1)"
        return f"CASE WHEN contains({x}, {delimiter}) THEN {second} ELSE '' END"

    def element(self, items: str, position: str) -> str:
        # array_position returns 0 when absent, and element_at(.., 0) is an error on Spark.
        return f"CASE WHEN {position} > 0 THEN element_at({items}, CAST({position} AS INTEGER)) END"


DUCKDB = DuckDBFunctions()
SPARK = SparkFunctions()
