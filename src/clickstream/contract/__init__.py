"""The data contract: schema, reject reasons and transformation rules, defined once."""

from clickstream.contract.schema import (
    OUTPUT_COLUMNS,
    PARTITION_COLUMNS,
    REJECT_REASON_NAMES,
    REJECT_REASONS,
    REJECTED_COLUMNS,
    REQUIRED_INPUT_COLUMNS,
)

__all__ = [
    "OUTPUT_COLUMNS",
    "PARTITION_COLUMNS",
    "REJECTED_COLUMNS",
    "REJECT_REASONS",
    "REJECT_REASON_NAMES",
    "REQUIRED_INPUT_COLUMNS",
]
