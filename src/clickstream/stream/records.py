"""The wire format: one event per record, a JSON object of the lake's columns plus ``v``.

Encoding and decoding both run inside DuckDB over whole batches (no per-record Python). A record
read back is validated as if an attacker wrote it; one that fails goes to the dead letters with
exactly one reason (REASONS, checked in this order). docs/stream.md documents the format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clickstream.contract.schema import OUTPUT_COLUMNS

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
    ("bad_event_time", f"'event_time' is not a UTC timestamp like 2024-01-31T23:59:59.000001Z"),
)

#: Fields the statistics read back (all are sent; a plain consumer may use any lake column).
STATS_FIELDS = ("event_id", "anonymous_user_id", "event_time", "url_path", "utm_source", "utm_medium")


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
               anonymous_user_id AS key
        FROM ({source}) ORDER BY event_time, event_id"""


def _reason_sql() -> str:
    checks = {
        "missing_payload": "payload IS NULL",
        "not_utf8": "text IS NULL",
        "not_json": "jtext IS NULL",
        "not_an_object": "json_type(jtext) <> 'OBJECT'",
        "wrong_schema_version": (
            f"coalesce(json_type(jtext, '$.v') NOT IN ('UBIGINT', 'BIGINT') "
            f"OR f[1] <> '{SCHEMA_VERSION}', true)"
        ),
        "missing_event_id": "coalesce(json_type(jtext, '$.event_id') <> 'VARCHAR' OR f[2] = '', true)",
        "missing_anonymous_user_id": (
            "coalesce(json_type(jtext, '$.anonymous_user_id') <> 'VARCHAR' OR f[3] = '', true)"
        ),
        "bad_event_time": "event_time IS NULL",
    }
    assert list(checks) == [r for r, _ in REASONS]
    whens = " ".join(f"WHEN {cond} THEN '{reason}'" for reason, cond in checks.items())
    return f"CASE {whens} END"


def decode(con: duckdb.DuckDBPyConnection, raw: str, out: str) -> None:
    """Create table ``out`` from table ``raw`` (ordinal, stream_id, payload BLOB): every record
    with ``reason`` NULL (valid, with the STATS_FIELDS) or one dead-letter reason."""
    paths = ", ".join(f"'$.{name}'" for name in ("v", *STATS_FIELDS))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {out} AS
        WITH texts AS (
          SELECT ordinal, stream_id, payload, TRY(decode(payload)) AS text FROM {raw}
        ), jsons AS (
          SELECT *, CASE WHEN json_valid(text) THEN text END AS jtext FROM texts
        ), fields AS (
          SELECT *, CASE WHEN json_type(jtext) = 'OBJECT'
                         THEN json_extract_string(jtext, [{paths}]) END AS f
          FROM jsons
        ), typed AS (
          SELECT *, TRY(strptime(f[4], '{TIME_FORMAT}')) AS event_time FROM fields
        )
        SELECT ordinal, stream_id, {_reason_sql()} AS reason,
               f[2] AS event_id, f[3] AS anonymous_user_id, event_time,
               f[5] AS url_path, f[6] AS utm_source, f[7] AS utm_medium,
               left(coalesce(text, CAST(payload AS VARCHAR)), {DEAD_LETTER_PAYLOAD_CHARS}) AS payload
        FROM typed""")
