"""The contract's transformation rules, written once as SQL and rendered per engine.

``contract_select(source, fx)`` turns a relation of raw string fields into the lake's columns plus
``reject_reason``. The engine supplies ``source`` with the columns in ``RAW_FIELDS`` (untrimmed
strings, NULL allowed) and ``source_file``.
Nested SELECTs, each adding a layer of named columns, keep every expression small and readable and
work unchanged on DuckDB and Spark.
"""

from __future__ import annotations

from collections.abc import Mapping

from clickstream.contract.dialects import SqlFunctions
from clickstream.contract.schema import (
    MAX_EPOCH_SECONDS,
    MIN_EPOCH_SECONDS,
    OUTPUT_COLUMNS,
    PARTITION_COLUMNS,
    REJECT_REASON_NAMES,
    REQUIRED_INPUT_COLUMNS,
    UTM_FIELDS,
)

#: Raw input column -> name of the untrimmed string column the engine provides.
RAW_FIELDS: Mapping[str, str] = {c: f"raw_{c}" for c in REQUIRED_INPUT_COLUMNS}


def _ipv6_re() -> str:
    """RFC 3986 IPv6address (no zone id), as a regex both RE2 (DuckDB) and Java (Spark) run."""
    h16 = "[0-9A-Fa-f]{1,4}"
    octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    ls32 = f"(?:{h16}:{h16}|{octet}(?:[.]{octet}){{3}})"

    def head(n: int) -> str:  # up to n+1 pieces before '::'
        return f"(?:(?:{h16}:){{0,{n}}}{h16})?" if n >= 0 else ""

    forms = [
        f"(?:{h16}:){{6}}{ls32}",
        f"::(?:{h16}:){{5}}{ls32}",
        f"{head(0)}::(?:{h16}:){{4}}{ls32}",
        f"{head(1)}::(?:{h16}:){{3}}{ls32}",
        f"{head(2)}::(?:{h16}:){{2}}{ls32}",
        f"{head(3)}::{h16}:{ls32}",
        f"{head(4)}::{ls32}",
        f"{head(5)}::{h16}",
        f"{head(6)}::",
    ]
    return "(?:" + "|".join(forms) + ")"


#: An IPv6 address as RFC 3986 writes it (the part between the brackets of a URL host).
IPV6_RE = _ipv6_re()
#: host then an optional :port, for a host that is a name (no ':', '@', brackets or spaces)...
NAME_AUTHORITY_RE = r"^([^:@\[\]\s]+)(:([0-9]*))?$"
#: ... or a bracketed IPv6 address (a bracketed host that is not one matches neither).
IPV6_AUTHORITY_RE = rf"^(\[{IPV6_RE}\])(:([0-9]*))?$"
#: Unix seconds: optional sign, digits, optional fraction. Exponents are not accepted.
TIME_RE = r"^[+-]?[0-9]+([.][0-9]*)?$"
#: Whitespace and control characters never appear in a URL (browsers percent-encode them).
URL_FORBIDDEN_RE = r"[\s\x00-\x1f\x7f]"
#: Control characters: they reject an id, and are removed from decoded query values.
CONTROL_RE = r"[\x00-\x1f\x7f]"
#: Control characters other than tab, LF and CR (which a quoted CSV field may hold as text):
#: removed from browser and os.
TEXT_CONTROL_RE = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
SCREEN_RE = r"^([0-9]+)[xX]([0-9]+)$"


def _layer(source: str, columns: Mapping[str, str]) -> str:
    cols = ",\n  ".join(f"{expr} AS {name}" for name, expr in columns.items())
    return f"SELECT *,\n  {cols}\nFROM (\n{source}\n) AS layer"


def _trimmed(fx: SqlFunctions) -> dict[str, str]:
    # t_*: trimmed, '' kept (the event_id hashes these); f_*: trimmed with '' as missing.
    out: dict[str, str] = {}
    for field, raw in RAW_FIELDS.items():
        out[f"t_{field}"] = f"coalesce({fx.trim_ws(raw)}, '')"
    return out


def _missing_as_null() -> dict[str, str]:
    return {f"f_{field}": f"nullif(t_{field}, '')" for field in RAW_FIELDS}


def _parsed(fx: SqlFunctions) -> dict[str, str]:
    # Plain string functions instead of one big capturing regex: several times faster, and exact
    # for every URL we keep (only http/https with '//' pass, so the scheme is text up to ':').
    unsigned, dot = "ltrim(f_time, '+')", "'.'"
    return {
        "_time_numeric": fx.matches("f_time", TIME_RE),
        "_id_controls": fx.matches("f_anonymous_user_id", CONTROL_RE),
        "_secs": f"TRY_CAST({fx.split_part(unsigned, dot, 1)} AS BIGINT)",
        "_frac": f"rpad(substr({fx.split_part('f_time', dot, 2)}, 1, 6), 6, '0')",
        "_scheme": fx.split_part("f_url", "':'", 1),
        # nullif: a failed TRY_CAST costs Spark a thrown exception, and '' (no match) is common.
        "_w": f"TRY_CAST(nullif(regexp_extract(f_screen_resolution, '{SCREEN_RE}', 1), '') AS INTEGER)",  # noqa: E501
        "_h": f"TRY_CAST(nullif(regexp_extract(f_screen_resolution, '{SCREEN_RE}', 2), '') AS INTEGER)",  # noqa: E501
    }


def _after_scheme() -> dict[str, str]:
    return {
        "_slashes": "substr(f_url, length(_scheme) + 2, 2) = '//'",
        "_rest": "substr(f_url, length(_scheme) + 4)",
    }


def _authority() -> dict[str, str]:
    return {"_authority": "regexp_extract(_rest, '^[^/?#]*', 0)"}


def _split_fragment() -> dict[str, str]:
    return {
        "_tail": "substr(_rest, length(_authority) + 1)",
        # Everything up to the last '@' of the authority is user info (rare: the regex runs
        # only where there is an '@').
        "_hostport": "CASE WHEN contains(_authority, '@') "
        "THEN regexp_replace(_authority, '^.*@', '') ELSE _authority END",
    }


def _split_query() -> dict[str, str]:
    return {
        "_hash": "strpos(_tail, '#')",
        "_before_hash": "CASE WHEN strpos(_tail, '#') > 0 "
        "THEN substr(_tail, 1, strpos(_tail, '#') - 1) ELSE _tail END",
    }


def _url_parts() -> dict[str, str]:
    return {
        "_fragment": "CASE WHEN _hash > 0 THEN substr(_tail, _hash + 1) ELSE '' END",
        "_qmark": "strpos(_before_hash, '?')",
    }


def _path_query() -> dict[str, str]:
    return {
        "_path": "CASE WHEN _qmark > 0 THEN substr(_before_hash, 1, _qmark - 1) ELSE _before_hash END",  # noqa: E501
        "_query": "CASE WHEN _qmark > 0 THEN substr(_before_hash, _qmark + 1) ELSE '' END",
    }


#: A parameter's value: after the first '='; NULL when it has none.
_VALUE = "CASE WHEN contains(s, chr(61)) THEN substr(s, strpos(s, chr(61)) + 1) END"


def _without_controls(fx: SqlFunctions, x: str) -> str:
    """A text field without control characters other than tab, CR and LF (NUL bytes occur)."""
    # The regex runs only where a control character is (rare), not on every row.
    return (
        f"CASE WHEN {fx.matches(x, TEXT_CONTROL_RE)} "
        f"THEN {fx.remove_matches(x, TEXT_CONTROL_RE)} ELSE {x} END"
    )


def _derived(fx: SqlFunctions) -> dict[str, str]:
    return {
        "_in_range": (
            f"coalesce(_time_numeric AND _secs >= {MIN_EPOCH_SECONDS} "
            f"AND _secs < {MAX_EPOCH_SECONDS}, FALSE)"
        ),
        # The query string's parameters, split once: every UTM field and the map derive from
        # the same lists (keys and values as parallel lists: cheaper than a list of structs).
        "_params": "CASE WHEN _query <> '' THEN list_filter(string_split(_query, '&'), s -> s <> '') END",  # noqa: E501
    }


def _param_parts(fx: SqlFunctions) -> dict[str, str]:
    # key/value split on the first '='; a key without '=' has a NULL value.
    return {
        "_raw_keys": f"list_transform(_params, s -> {fx.split_part('s', 'chr(61)', 1)})",
        "_raw_values": f"list_transform(_params, s -> {_VALUE})",
    }


def _param_decoded(fx: SqlFunctions) -> dict[str, str]:
    # Decoded once, here, for the map and the UTM columns alike.
    return {
        "_keys": f"list_transform(_raw_keys, k -> {fx.form_decode('k', CONTROL_RE)})",
        "_values": f"list_transform(_raw_values, v -> nullif({fx.form_decode('v', CONTROL_RE)}, ''))",  # noqa: E501
    }


def _pair_keys(fx: SqlFunctions) -> dict[str, str]:
    return {
        "_lower_keys": "list_transform(_keys, k -> lower(k))",
        "_key_order": fx.key_order("_keys"),
    }


def _host_check(fx: SqlFunctions) -> dict[str, str]:
    return {"_name_ok": fx.matches("_hostport", NAME_AUTHORITY_RE)}


def _host_parts(fx: SqlFunctions) -> dict[str, str]:
    # The long IPv6 pattern runs only on bracketed hosts (it would cost a quarter of the
    # contract's time on every row). A host name holds no ':', so once the name pattern has
    # matched, host and port split at the ':' (as the pattern's groups would, one regex run).
    colon = "':'"

    def part(group: int, piece: int) -> str:
        return (
            f"CASE WHEN substr(_hostport, 1, 1) = '[' "
            f"THEN regexp_extract(_hostport, '{IPV6_AUTHORITY_RE}', {group}) "
            f"WHEN _name_ok THEN {fx.split_part('_hostport', colon, piece)} "
            "WHEN NOT _name_ok THEN '' END"
        )

    return {"_host": f"lower({part(1, 1)})", "_port_text": part(3, 2)}


def _validity(fx: SqlFunctions) -> dict[str, str]:
    return {
        "_port": "TRY_CAST(nullif(_port_text, '') AS INTEGER)",
        "_url_ok": (
            "coalesce(lower(_scheme) IN ('http', 'https') AND _slashes AND _host <> '' "
            f"AND NOT {fx.matches('f_url', URL_FORBIDDEN_RE)} "
            # nullif although '' is tested first: Spark evaluates the repeated cast of BETWEEN
            # before the OR, and a failed TRY_CAST costs it a thrown exception per row.
            "AND (_port_text = '' OR TRY_CAST(nullif(_port_text, '') AS INTEGER) "
            "BETWEEN 1 AND 65535), FALSE)"
        ),
    }


#: reject reason -> condition, in contract order. malformed_csv is decided by the CSV reader.
REJECT_CONDITIONS: Mapping[str, str] = {
    "missing_user_id": "f_anonymous_user_id IS NULL",
    "invalid_user_id": "_id_controls",
    "invalid_time": "NOT coalesce(_time_numeric, FALSE)",
    "time_out_of_range": "NOT _in_range",
    "invalid_url": "NOT _url_ok",
}
assert tuple(REJECT_CONDITIONS) == REJECT_REASON_NAMES[1:], "reject order must follow the contract"


#: raw_line keeps this many characters; a longer record is cut and marked with RAW_CUT_MARK.
RAW_LINE_MAX_CHARS = 10_000
RAW_CUT_MARK = "…[truncated]"


def truncated_raw(x: str) -> str:
    """raw_line cut to RAW_LINE_MAX_CHARS with a visible mark (DuckDB's reader hands over at
    most that many characters of a malformed record, so a record of exactly that length is
    marked too: the reader cannot tell)."""
    return (
        f"CASE WHEN length({x}) >= {RAW_LINE_MAX_CHARS} "
        f"THEN substr({x}, 1, {RAW_LINE_MAX_CHARS}) || '{RAW_CUT_MARK}' ELSE {x} END"
    )


def _csv_field(x: str) -> str:
    """Re-encode one raw field as a CSV field (quoted when it needs to be)."""
    needs_quotes = f"(strpos({x}, ',') > 0 OR strpos({x}, '\"') > 0 OR strpos({x}, chr(10)) > 0)"
    quoted = f"'\"' || replace({x}, '\"', '\"\"') || '\"'"
    return f"CASE WHEN {needs_quotes} THEN {quoted} ELSE coalesce({x}, '') END"


def _first_value(fx: SqlFunctions, key: str) -> str:
    """Decoded value of the first query parameter whose decoded key equals ``key`` (any case)."""
    return fx.element("_values", f"array_position(_lower_keys, {key!r})")


def _outputs(fx: SqlFunctions) -> dict[str, str]:
    cases = " ".join(f"WHEN {cond} THEN '{name}'" for name, cond in REJECT_CONDITIONS.items())
    micros = "CASE WHEN _in_range THEN _secs * 1000000 + CAST(_frac AS BIGINT) END"
    userinfo_len = "length(_authority) - length(_hostport)"
    clean_url = (
        f"concat(substr(f_url, 1, length(_scheme) + 3), "
        f"substr(f_url, length(_scheme) + 4 + {userinfo_len}))"
    )
    raw_line = " || ',' || ".join(_csv_field(raw) for raw in RAW_FIELDS.values())
    utm = {f"utm_{f}": _first_value(fx, f"utm_{f}") for f in UTM_FIELDS}
    query_map = fx.first_wins_map("_keys", "_values", "_key_order")
    hash_input = ", ".join(f"t_{field}" for field in RAW_FIELDS)
    return {
        "reject_reason": f"CASE {cases} END",
        "event_id": f"md5(concat_ws(chr(31), {hash_input}))",
        "anonymous_user_id": "f_anonymous_user_id",
        "event_time": fx.micros_to_timestamp(micros),
        # Without user info the cleaned URL is the URL as written.
        "url": f"CASE WHEN _url_ok AND contains(_authority, '@') THEN {clean_url} ELSE f_url END",
        "url_protocol": "lower(_scheme)",
        "url_host": "_host",
        "url_port": "_port",
        "url_path": "CASE WHEN _path = '' THEN '/' ELSE _path END",
        "url_query": "nullif(_query, '')",
        "url_fragment": "nullif(_fragment, '')",
        **utm,
        "query_params": f"CASE WHEN _params IS NOT NULL THEN {query_map} END",
        "browser": f"nullif({_without_controls(fx, 'f_browser')}, '')",
        "os": f"nullif({_without_controls(fx, 'f_os')}, '')",
        "screen_resolution": "f_screen_resolution",
        "screen_width": "CASE WHEN _w > 0 AND _h > 0 THEN _w END",
        "screen_height": "CASE WHEN _w > 0 AND _h > 0 THEN _h END",
        "raw_line": (
            f"CASE WHEN reject_reason_pre IS NOT NULL "
            f"THEN {truncated_raw(fx.redact_userinfo(raw_line))} END"
        ),
    }


def contract_select(source: str, fx: SqlFunctions, passthrough: tuple[str, ...] = ()) -> str:
    """SQL producing every output column, ``reject_reason`` and ``raw_line`` from ``source``.

    Rows with a reject reason still carry all columns; the engine routes them to quarantine.
    ``passthrough`` names extra source columns the engine needs back (positions, file ids).
    """
    sql = _layer(source, _trimmed(fx))
    sql = _layer(sql, _missing_as_null())
    for layer in (
        _parsed(fx), _after_scheme(), _authority(), _split_fragment(), _split_query(),
        _url_parts(), _path_query(), _derived(fx), _param_parts(fx), _param_decoded(fx),
        _pair_keys(fx),
    ):  # fmt: skip
        sql = _layer(sql, layer)
    sql = _layer(sql, _host_check(fx))
    sql = _layer(sql, _host_parts(fx))
    sql = _layer(sql, _validity(fx))
    outputs = _outputs(fx)
    cases = outputs.pop("reject_reason")
    sql = _layer(sql, {"reject_reason_pre": cases})
    sql = _layer(sql, {"event_date_ts": outputs.pop("event_time")})
    final = [
        "reject_reason_pre AS reject_reason",
        "source_file",
        *passthrough,
        *(f"{expr} AS {name}" for name, expr in outputs.items()),
        "event_date_ts AS event_time",
        "CAST(event_date_ts AS DATE) AS event_date",
        "CAST(year(event_date_ts) AS INTEGER) AS year",
        "CAST(month(event_date_ts) AS INTEGER) AS month",
    ]
    select = ",\n  ".join(final)
    return f"SELECT\n  {select}\nFROM (\n{sql}\n) AS contract"


#: Lake columns in schema order (what the engine writes, before the partition columns).
LAKE_COLUMNS: tuple[str, ...] = tuple(c.name for c in OUTPUT_COLUMNS)
PARTITION_NAMES: tuple[str, ...] = tuple(c.name for c in PARTITION_COLUMNS)
