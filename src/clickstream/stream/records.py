"""The wire format: one event per record, a JSON object of the lake's columns plus ``v``.

Encoding and decoding both run inside DuckDB over whole batches (no per-record Python). A record
read back is validated as if an attacker wrote it; one that fails goes to the dead letters with
exactly one reason (REASONS, checked in this order). docs/stream.md documents the format.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from clickstream.contract.schema import MAX_EPOCH_SECONDS, MIN_EPOCH_SECONDS, OUTPUT_COLUMNS

if TYPE_CHECKING:
    import duckdb

#: Bumped when a field changes meaning; a consumer dead-letters any other version.
SCHEMA_VERSION = 1
#: event_time on the wire: ISO-8601, UTC ("Z"), always six fractional digits.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
#: Payloads kept in a dead-letter row are cut to this many characters.
DEAD_LETTER_PAYLOAD_CHARS = 2000

#: Dead-letter reasons, in the order they are checked.
REASONS: tuple[tuple[str, str], ...] = (
    ("missing_payload", "the stream entry has no 'e' field (or was deleted before it was read)"),
    ("not_utf8", "the payload is not UTF-8 text"),
    ("not_json", "the payload is not valid JSON"),
    ("not_an_object", "the JSON is not an object"),
    ("wrong_schema_version", f"'v' is not the integer {SCHEMA_VERSION}"),
    ("missing_event_id", "'event_id' is missing, empty or not a string"),
    ("missing_anonymous_user_id", "'anonymous_user_id' is missing, empty or not a string"),
    ("bad_event_time", "'event_time' is not a UTC timestamp like 2024-01-31T23:59:59.000001Z"),
    (
        "event_time_out_of_range",
        "'event_time' is outside the lake's bounds [2000-01-01, 2100-01-01) UTC",
    ),
)

#: Fields the statistics read back (all are sent; a plain consumer may use any lake column).
STATS_FIELDS = (
    "event_id",
    "anonymous_user_id",
    "event_time",
    "url_path",
    "utm_source",
    "utm_medium",
)


def _field(name: str, type_: str) -> str:
    if name == "event_time":
        return f"'{name}': strftime(event_time, '{TIME_FORMAT}')"
    if type_ == "DATE":
        return f"'{name}': CAST({name} AS VARCHAR)"
    return f"'{name}': {name}"


def encode_sql(source: str) -> str:
    """SELECT ``payload`` (BLOB, the record) and ``key`` (the partition key) from ``source``,
    in event-time order (ties by event_id, so a re-publish sends the same sequence)."""
    fields = ", ".join(_field(c.name, c.type) for c in OUTPUT_COLUMNS)
    return f"""
        SELECT CAST(to_json({{'v': {SCHEMA_VERSION}, {fields}}}) AS BLOB) AS payload,
               anonymous_user_id AS key, event_id
        FROM ({source}) ORDER BY event_time, event_id"""


def _reason_sql() -> str:
    checks = {
        "missing_payload": "payload IS NULL",
        "not_utf8": "text IS NULL",
        # j is NULL exactly when the text is not a JSON object: json_valid, a second parse,
        # runs only for those (rare) rows to tell the two reasons apart.
        "not_json": "j IS NULL AND NOT json_valid(text)",
        "not_an_object": "j IS NULL",
        "wrong_schema_version": (
            f"coalesce(json_type(j.v) NOT IN ('UBIGINT', 'BIGINT') "
            f"OR CAST(j.v AS VARCHAR) <> '{SCHEMA_VERSION}', true)"
        ),
        "missing_event_id": _string_missing("event_id"),
        "missing_anonymous_user_id": _string_missing("anonymous_user_id"),
        "bad_event_time": "event_time IS NULL",
        # The lake's contract bounds: a year-9999 record would otherwise poison the watermark.
        "event_time_out_of_range": (
            f"event_time < TIMESTAMP '{_bound(MIN_EPOCH_SECONDS)}' "
            f"OR event_time >= TIMESTAMP '{_bound(MAX_EPOCH_SECONDS)}'"
        ),
    }
    assert list(checks) == [r for r, _ in REASONS]
    whens = " ".join(f"WHEN {cond} THEN '{reason}'" for reason, cond in checks.items())
    return f"CASE {whens} END"


def _bound(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _string_missing(name: str) -> str:
    value = f"json_extract_string(j.{name}, '$')"
    return f"coalesce(json_type(j.{name}) <> 'VARCHAR' OR {value} = '', true)"


def _text(name: str) -> str:
    return f"CASE WHEN json_type(j.{name}) = 'VARCHAR' THEN json_extract_string(j.{name}, '$') END"


def decode(con: duckdb.DuckDBPyConnection, raw: str, out: str) -> None:
    """Create table ``out`` from table ``raw`` (ordinal, stream_id, payload BLOB): every record
    with ``reason`` NULL (valid, with the STATS_FIELDS) or one dead-letter reason.

    Each payload is parsed once into a struct (TRY: a malformed one gives NULL); the identity
    fields stay raw JSON values so their type can be checked, the rest are read as text (a JSON
    null reads as NULL)."""
    raw_json = ("v", "event_id", "anonymous_user_id")
    shape = (
        "{"
        + ", ".join(
            f'"{f}": "{"JSON" if f in raw_json else "VARCHAR"}"' for f in ("v", *STATS_FIELDS)
        )
        + "}"
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {out} AS
        WITH texts AS (
          SELECT ordinal, stream_id, payload, TRY(decode(payload)) AS text FROM {raw}
        ), parsed AS (
          SELECT *, CASE WHEN starts_with(ltrim(text, ' \t\n\r'), '{{')
                         THEN TRY(json_transform(text, '{shape}')) END AS j
          FROM texts
        ), typed AS (
          SELECT *, try_strptime(j.event_time, '{TIME_FORMAT}') AS event_time FROM parsed
        ), checked AS (
          SELECT *, {_reason_sql()} AS reason FROM typed
        )
        SELECT ordinal, stream_id, reason,
               {_text("event_id")} AS event_id, {_text("anonymous_user_id")} AS anonymous_user_id,
               event_time, j.url_path AS url_path, j.utm_source AS utm_source,
               j.utm_medium AS utm_medium,
               CASE WHEN reason IS NOT NULL THEN left(CASE WHEN text IS NULL
                 THEN CAST(payload AS VARCHAR) ELSE text END, {DEAD_LETTER_PAYLOAD_CHARS}) END
                 AS payload
        FROM checked""")
