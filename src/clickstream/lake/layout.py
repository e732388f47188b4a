"""Where things live in a lake (one place, so engines, commit and queries agree)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

#: ``clickstream etl`` compacts a partition it wrote to once this many runs' files are there
#: (``lake.compact.tiered_plan``).
AUTO_COMPACT_FILES = 16

#: ``datetime.UTC`` is 3.11; the Spark job runs on EMR 7's Python 3.9.
UTC = timezone.utc  # noqa: UP017

TABLE = "clickstream"
REJECTED_TABLE = "clickstream_rejected"
#: Per-partition event-id index (``_index/year=/month=/<run_id>_<n>.parquet``): only the ETL's
#: duplicate check reads it; the ``_`` keeps Hive-style readers (Athena, Spark) away from it.
INDEX = "_index"

#: Every run id ``new_run_id`` makes; anything read back from the lake must match it.
RUN_ID_PATTERN = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, unique run id: UTC timestamp plus random suffix."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class LakeLayout:
    root: Path

    @property
    def table(self) -> Path:
        return self.root / TABLE

    @property
    def rejected(self) -> Path:
        return self.root / REJECTED_TABLE

    @property
    def index(self) -> Path:
        return self.root / INDEX

    @property
    def runs(self) -> Path:
        return self.root / "_runs"

    @property
    def staging_root(self) -> Path:
        return self.root / "_staging"

    def staging(self, run_id: str) -> Path:
        return self.staging_root / run_id

    def report(self, run_id: str) -> Path:
        return self.runs / f"{run_id}.json"

    def commit_log(self, run_id: str) -> Path:
        return self.runs / f"{run_id}.commit.json"

    @staticmethod
    def partition(year: int, month: int) -> str:
        return f"year={year}/month={month}"
