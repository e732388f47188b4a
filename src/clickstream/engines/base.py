"""What an engine must do: run the contract over new input files into a staging folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from clickstream.lake.store import LakeStore
from clickstream.sources import SourceFile

#: The JVM flag every Spark JVM running the contract gets (ours in local mode, EMR's driver and
#: executors): the contract's whole-stage code is one method beyond HotSpot's 8000-byte limit
#: for JIT compilation, so by default it runs interpreted; compiling it halves the contract.
SPARK_JIT_FLAG = "-XX:-DontCompileHugeMethods"

#: progress(stage description, fraction done in [0, 1] or None when unknown)
#: (the union quoted: this alias is evaluated at import, and EMR 7's Python 3.9 has no ``|``)
Progress = Callable[[str, "float | None"], None]


def no_progress(stage: str, fraction: float | None) -> None:
    """Default progress sink."""


@dataclass(frozen=True)
class StageRequest:
    run_id: str
    sources: list[SourceFile]
    lake: LakeStore
    staging: Path
    """Write ``clickstream/`` and ``clickstream_rejected/`` under here, nothing anywhere else."""
    dedupe_against_lake: bool
    """Also drop rows whose event_id is already in the lake's touched partitions."""


@dataclass
class StageResult:
    rows_read_by_file: dict[str, int] = field(default_factory=dict)
    rows_written: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    rows_duplicate: int = 0
    partitions: dict[tuple[int, int], int] = field(default_factory=dict)


class Engine(Protocol):
    name: str

    def stage(self, request: StageRequest, progress: Progress) -> StageResult:
        """Apply the contract to ``request.sources`` and write the run's files to staging."""
