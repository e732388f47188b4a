"""The event-id index: what a run's duplicate check reads instead of whole partitions.

Each run writes, next to its data files, ``_index/year=Y/month=M/<run_id>_<n>.parquet`` holding
only the 128-bit event ids (two UBIGINT columns ``h``, ``l``) of the rows it wrote to that
partition. Both are committed by the same commit log, so they appear (or not) together.

A duplicate always lands in the partition of its original (same event id, same fields, same
event time), so the check needs only the partitions a run touches. For each of them the index is
trusted per run, and only while that run still has a data file there: a data file whose run has
no index (written before the index existed, by the Spark engine, or rewritten by a compaction)
is read itself, and an index whose run has no data file left is ignored. So the index can make
the check faster, never wrong.
"""

from __future__ import annotations

import re

from clickstream.lake.layout import RUN_ID_PATTERN

#: ``<run_id>_<n>.parquet``: the name every writer gives a data or index file.
_FILE_RE = re.compile(rf"({RUN_ID_PATTERN.pattern})_[0-9]+\.parquet")

#: event_id (32 lowercase hex digits) -> the two index columns; anything else gives NULLs, which
#: match nothing (no md5 the contract makes could equal it).
ID_COLUMNS = (
    "TRY_CAST('0x' || substr(event_id, 1, 16) AS UBIGINT) AS h, "
    "TRY_CAST('0x' || substr(event_id, 17, 16) AS UBIGINT) AS l"
)


def run_of(path: str) -> str | None:
    """The run id a data or index file's name carries, None for any other name."""
    match = _FILE_RE.fullmatch(path.rsplit("/", 1)[-1])
    return match.group(1) if match else None


def dedupe_sources(data: list[str], index: list[str]) -> tuple[list[str], list[str]]:
    """For one partition: (index files to read, data files to read themselves).

    >>> a, b, c = "20240101T000000Z-aaaaaa", "20240102T000000Z-bbbbbb", "20230101T000000Z-cccccc"
    >>> dedupe_sources([f"p/{a}_0.parquet", f"p/{b}_0.parquet"],
    ...                [f"i/{a}_0.parquet", f"i/{c}_0.parquet"])
    (['i/20240101T000000Z-aaaaaa_0.parquet'], ['p/20240102T000000Z-bbbbbb_0.parquet'])
    """
    runs_with_data = {run_of(p) for p in data}
    indexed: dict[str, list[str]] = {}
    for path in index:
        run = run_of(path)
        if run is not None and run in runs_with_data:
            indexed.setdefault(run, []).append(path)
    use_index = sorted(p for paths in indexed.values() for p in paths)
    read_whole = sorted(p for p in data if run_of(p) not in indexed)
    return use_index, read_whole
