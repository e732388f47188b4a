"""The data contract as data: input columns, output schema, reject reasons.

Every engine and every document renders from these tuples; docs/data-contract.md explains them.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Input columns every file's header must name (matched case-insensitively, trimmed).
REQUIRED_INPUT_COLUMNS: tuple[str, ...] = (
    "anonymous_user_id",
    "url",
    "time",
    "browser",
    "os",
    "screen_resolution",
)

#: Unix-second bounds of a keepable event time: [2000-01-01, 2100-01-01) UTC.
MIN_EPOCH_SECONDS = 946_684_800
MAX_EPOCH_SECONDS = 4_102_444_800

#: The UTM parameters lifted out of the query string into their own columns.
UTM_FIELDS: tuple[str, ...] = ("source", "medium", "campaign", "term", "content")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """Logical type, spelled as DuckDB spells it (Spark/Athena names are derived)."""
    doc: str


OUTPUT_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "VARCHAR", "md5 of the six trimmed raw fields; identical on every engine"),
    Column("anonymous_user_id", "VARCHAR", "visitor id, trimmed"),
    Column("event_time", "TIMESTAMP", "page-view time, UTC, microsecond precision"),
    Column("event_date", "DATE", "UTC calendar date of event_time"),
    Column("url", "VARCHAR", "original URL, trimmed, with any user:password@ removed"),
    Column("url_protocol", "VARCHAR", "scheme, lower case (http or https)"),
    Column("url_host", "VARCHAR", "host, lower case, without port or user info"),
    Column("url_port", "INTEGER", "port when written explicitly, else NULL"),
    Column("url_path", "VARCHAR", "path as written (percent-encoding kept); '/' when none"),
    Column(
        "url_query",
        "VARCHAR",
        "query string as written (not decoded) without '?'; NULL when absent or empty",
    ),
    Column("url_fragment", "VARCHAR", "fragment without '#'; NULL when absent or empty"),
    *(
        Column(
            f"utm_{f}",
            "VARCHAR",
            f"decoded utm_{f} query parameter (first occurrence), control characters removed",
        )
        for f in UTM_FIELDS
    ),
    Column(
        "query_params",
        "MAP(VARCHAR, VARCHAR)",
        "every query parameter, decoded, control characters removed; a repeated key keeps "
        "its first value",
    ),
    Column("browser", "VARCHAR", "browser, trimmed, control characters but tab/CR/LF removed"),
    Column("os", "VARCHAR", "operating system, trimmed, control characters but tab/CR/LF removed"),
    Column("screen_resolution", "VARCHAR", "resolution as written, trimmed"),
    Column("screen_width", "INTEGER", "width from WxH; NULL unless both are positive integers"),
    Column("screen_height", "INTEGER", "height from WxH; NULL unless both are positive integers"),
    Column("source_file", "VARCHAR", "the input file the row came from"),
)

#: Hive partition columns, derived from event_time (UTC); they live in the folder names.
PARTITION_COLUMNS: tuple[Column, ...] = (
    Column("year", "INTEGER", "UTC year of event_time"),
    Column("month", "INTEGER", "UTC month of event_time (1-12, unpadded in paths)"),
)

REJECTED_COLUMNS: tuple[Column, ...] = (
    Column("source_file", "VARCHAR", "the input file"),
    Column("line_number", "BIGINT", "record number counting the header as line 1"),
    Column("raw_line", "VARCHAR", "the record as read (user info in URLs redacted)"),
    Column("reject_reason", "VARCHAR", "exactly one reason from REJECT_REASONS"),
    Column("run_id", "VARCHAR", "the run that quarantined the row"),
)


@dataclass(frozen=True)
class RejectReason:
    name: str
    doc: str


#: Checked in this order; a row gets the first that applies.
REJECT_REASONS: tuple[RejectReason, ...] = (
    RejectReason("malformed_csv", "wrong number of fields or broken quoting"),
    RejectReason("missing_user_id", "anonymous_user_id missing or blank"),
    RejectReason(
        "invalid_user_id", "anonymous_user_id holds a control character (NUL, tab, newline...)"
    ),
    RejectReason("invalid_time", "time missing or not a decimal number of seconds"),
    RejectReason("time_out_of_range", "numeric time outside [2000-01-01, 2100-01-01) UTC"),
    RejectReason("invalid_url", "url missing, or not an absolute http(s) URL with a host"),
)

REJECT_REASON_NAMES: tuple[str, ...] = tuple(r.name for r in REJECT_REASONS)
