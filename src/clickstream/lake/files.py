"""Which table files are the lake: the writer's exact name, of a committed run.

Every reader and writer that lists a partition goes through :func:`writer_files`, so a file
that is not the lake (a stray ``*.parquet``, one named like a writer's by a run that never
committed, a copy left by hand) is read by nobody: not by queries, not by a run's duplicate
check, not by compaction (which would merge it in), not by the stream's publisher.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from clickstream import s3
from clickstream.lake.layout import RUN_ID_PATTERN, TABLE

#: A table file as writers name it, relative to the lake root (as ``query.session`` accepts it).
TABLE_FILE = re.compile(
    rf"{TABLE}/year=(?P<year>[1-9][0-9]{{0,3}})/month=(?P<month>[1-9]|1[0-2])/"
    rf"(?P<run>{RUN_ID_PATTERN.pattern})_(?:0|[1-9][0-9]*)\.parquet"
)


def committed_runs(root: str) -> list[str]:
    """Run ids with a report in ``_runs/`` of a local lake (committed runs), sorted."""
    runs = Path(root) / "_runs"
    if not runs.is_dir():
        return []
    names = (p.name for p in runs.iterdir() if p.name.endswith(".json"))
    return sorted(n[:-5] for n in names if RUN_ID_PATTERN.fullmatch(n[:-5]))


def lake_runs(root: str) -> set[str] | None:
    """The committed runs ``writer_files`` checks against: listed once for a local lake, None
    (names only) for an S3 lake."""
    return None if s3.is_s3(root) else set(committed_runs(root))


def table_match(root: str, path: str) -> re.Match[str] | None:
    """``path``'s parts (year, month, run) when a writer named it, relative to ``root``."""
    base = root.rstrip("/") + "/"
    return TABLE_FILE.fullmatch(path[len(base) :]) if path.startswith(base) else None


def writer_files(
    root: str, table_files: list[str], runs: Collection[str] | None = None
) -> list[str]:
    """The table files a writer named, of committed runs (what queries read).

    ``runs``: the committed run ids when the caller has them; else a local lake's ``_runs/``
    is listed (an S3 lake's files are then checked by name only, as its queries read them).
    """
    if runs is None:
        runs = lake_runs(root)
    out = []
    for f in table_files:
        match = table_match(root, f)
        if match and (runs is None or match["run"] in runs):
            out.append(f)
    return out


__all__ = ["TABLE_FILE", "committed_runs", "lake_runs", "table_match", "writer_files"]
