"""docs/data-contract.md restates schema.py for readers: every column, type and reason, in order."""

from __future__ import annotations

import re
from pathlib import Path

from clickstream.contract.schema import OUTPUT_COLUMNS, PARTITION_COLUMNS, REJECT_REASONS

DOC = Path(__file__).parents[2] / "docs" / "data-contract.md"


def _table_rows(section: str) -> list[list[str]]:
    text = DOC.read_text()
    body = text[text.index(section) :]
    rows = []
    for line in body.splitlines()[1:]:
        if line.startswith("## "):
            break
        if line.startswith("| `"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_every_output_column_is_documented_with_its_type() -> None:
    documented: dict[str, str] = {}
    for names, typ, _ in _table_rows("## Output columns"):
        for name in re.findall(r"`([a-z_]+)`", names):
            documented[name] = typ
    expected = {c.name: c.type for c in (*OUTPUT_COLUMNS, *PARTITION_COLUMNS)}
    assert documented == expected


def test_reject_reasons_are_documented_in_contract_order() -> None:
    rows = _table_rows("## Reject reasons")
    assert [re.findall(r"`([a-z_]+)`", r[0])[0] for r in rows] == [r.name for r in REJECT_REASONS]
