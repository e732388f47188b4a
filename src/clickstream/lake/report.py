"""The run report: what a run read, wrote, rejected and skipped, with its reconciliation check."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from clickstream.contract.schema import REJECT_REASON_NAMES
from clickstream.errors import InvariantError


@dataclass
class InputFileReport:
    path: str
    size: int
    mtime_ns: int
    rows_read: int = 0
    ends_with_newline: bool = True
    """False when its last line had no newline when read: should the file grow, that line may
    have been cut short (``cut_short``). Stored only when False."""


@dataclass
class SkippedFile:
    """An input the run left out for a reason other than being ingested already."""

    path: str
    reason: str
    """Why, for a person (e.g. 'a FIFO', 'still being written: ...')."""


@dataclass
class PartitionReport:
    year: int
    month: int
    rows: int


@dataclass
class RunReport:
    run_id: str
    engine: str
    lake: str
    started_at: str
    finished_at: str = ""
    full_refresh: bool = False
    input_files: list[InputFileReport] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    """Inputs already ingested by an earlier run (same path, size and mtime). Reports written
    before ``not_read`` existed also list other left-out files here, as '<path> (<why>)'."""
    not_read: list[SkippedFile] = field(default_factory=list)
    """Inputs left out for a reason (still being written, a FIFO, a dangling symlink...)."""
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    rows_duplicate: int = 0
    partitions: list[PartitionReport] = field(default_factory=list)
    seconds: float = 0.0
    rows_per_second: float = 0.0
    compacted_runs: list[str] = field(default_factory=list)
    """A compaction's report only: the runs whose table files it rewrote (``lake.compact``)."""

    def check(self) -> None:
        """Assert the reconciliation invariant; a failure means a bug, and nothing is committed."""
        accounted = self.rows_written + self.rows_rejected + self.rows_duplicate
        if self.rows_read != accounted:
            raise InvariantError(
                f"run {self.run_id}: rows_read={self.rows_read} but written + rejected + "
                f"duplicate = {accounted}; nothing was committed"
            )
        if sum(self.rejected_by_reason.values()) != self.rows_rejected:
            raise InvariantError(f"run {self.run_id}: rejects by reason do not add up")
        if sum(p.rows for p in self.partitions) != self.rows_written:
            raise InvariantError(f"run {self.run_id}: partition counts do not add up")
        if sum(f.rows_read for f in self.input_files) != self.rows_read:
            raise InvariantError(f"run {self.run_id}: per-file counts do not add up")
        unknown = set(self.rejected_by_reason) - set(REJECT_REASON_NAMES)
        if unknown:
            raise InvariantError(f"run {self.run_id}: unknown reject reasons {sorted(unknown)}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.compacted_runs:  # a run's report keeps the shape it always had
            del data["compacted_runs"]
        if not self.not_read:
            del data["not_read"]
        for f in data["input_files"]:
            if f["ends_with_newline"]:
                del f["ends_with_newline"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        data = dict(data)
        data["input_files"] = [InputFileReport(**f) for f in data.get("input_files", [])]
        data["partitions"] = [PartitionReport(**p) for p in data.get("partitions", [])]
        data["not_read"] = [SkippedFile(**f) for f in data.get("not_read", [])]
        return cls(**data)


def ingested_keys(reports: list[RunReport]) -> set[tuple[str, int, int]]:
    """(path, size, mtime) of every file in the lake since its last full refresh."""
    keys: set[tuple[str, int, int]] = set()
    for report in reports:
        if report.full_refresh:
            keys.clear()
        keys.update((f.path, f.size, f.mtime_ns) for f in report.input_files)
    return keys


def cut_short(reports: list[RunReport]) -> dict[str, tuple[str, int]]:
    """Files whose latest ingest (since the last full refresh) ended without a newline:
    path -> (run_id, size then)."""
    latest: dict[str, tuple[str, InputFileReport]] = {}
    for report in reports:
        if report.full_refresh:
            latest.clear()
        latest.update((f.path, (report.run_id, f)) for f in report.input_files)
    return {p: (r, f.size) for p, (r, f) in latest.items() if not f.ends_with_newline}
