"""SQL text built from values: the one place a value becomes a SQL literal or identifier."""

from __future__ import annotations

from collections.abc import Iterable


def sql_literal(value: str) -> str:
    """A single-quoted SQL string literal (quotes doubled): no value can end the string.

    >>> sql_literal("it's")
    "'it''s'"
    """
    if "\x00" in value:
        raise ValueError("a SQL literal cannot hold a NUL character")
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: Iterable[str]) -> str:
    """A SQL list of string literals: ``['a', 'b']``."""
    return "[" + ", ".join(sql_literal(v) for v in values) + "]"


def sql_identifier(name: str) -> str:
    """A double-quoted identifier (quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'
