"""The one place that reads the lake's own metadata back: commit logs and run reports.

Anything under ``_runs/`` is treated as if an attacker wrote it. Before a commit log is replayed
or a report decides which inputs count as ingested, it is checked here: size bound, strict JSON
(no NaN, no duplicate keys), exact keys and types, a run id that ``new_run_id`` could have made
and that matches the file's name, and every path relative, normalised, inside the lake *and*
inside the table folder it belongs to. An invalid file raises :class:`CorruptMetadataError`
naming it; nothing in it is acted on.

Policy: a writer refuses to run while an invalid file sits in ``_runs/`` (one line saying which
file and what to do), rather than ignoring it: ignoring a commit log would leave a half-applied
run in place, and ignoring a report would re-ingest (or skip) inputs behind the user's back.
"""

from __future__ import annotations

import json
import math
import posixpath
from dataclasses import dataclass
from typing import Any

from clickstream.errors import CorruptMetadataError, InvariantError
from clickstream.lake.layout import INDEX, REJECTED_TABLE, RUN_ID_PATTERN, TABLE
from clickstream.lake.report import InputFileReport, PartitionReport, RunReport, SkippedFile

#: Largest commit log or run report read back (a full refresh of ~300k files fits).
MAX_BYTES = 64 * 1024 * 1024
#: Folders a commit may move files into or delete files from.
DATA_FOLDERS = (TABLE, REJECTED_TABLE, INDEX)
REPORT_SUFFIX = ".json"
COMMIT_SUFFIX = ".commit.json"

_HOW_TO_FIX = (
    "it was not applied; if you did not write it, move it out of _runs/ (keep a copy) and run again"
)


@dataclass(frozen=True)
class LocalCommit:
    run_id: str
    moves: list[str]
    """Paths relative to the run's staging folder and to the lake root (the same path)."""
    deletes: list[str]
    report: RunReport


@dataclass(frozen=True)
class S3Commit:
    run_id: str
    uploads: list[str]
    """Paths relative to the lake root."""
    deletes: list[str]
    """Full object keys, all under the lake's prefix."""


class _Invalid(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _Invalid(f"non-standard JSON number {name}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Invalid(f"duplicate key {key!r}")
        out[key] = value
    return out


def _parse(raw: bytes) -> Any:
    if len(raw) > MAX_BYTES:
        raise _Invalid(f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _Invalid(f"not JSON ({err})") from None


def _obj(value: Any, keys: set[str], optional: set[str] = frozenset(), what: str = "") -> dict:  # type: ignore[type-arg,assignment]
    if not isinstance(value, dict):
        raise _Invalid(f"{what or 'top level'} is not an object")
    missing = keys - value.keys()
    extra = value.keys() - keys - optional
    if missing:
        raise _Invalid(f"{what or 'top level'} lacks {sorted(missing)}")
    if extra:
        raise _Invalid(f"{what or 'top level'} has unknown keys {sorted(extra)[:5]}")
    return value


def _str(value: Any, what: str, limit: int = 4096) -> str:
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise _Invalid(f"{what} is not a string")
    return value


def _int(value: Any, what: str, minimum: int | None = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"{what} is not an integer")
    if minimum is not None and value < minimum:
        raise _Invalid(f"{what} is negative")
    return value


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Invalid(f"{what} is not a number")
    return float(value)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid(f"{what} is not a list")
    return value


def _run_id(value: Any, what: str = "run_id") -> str:
    if not isinstance(value, str) or not RUN_ID_PATTERN.fullmatch(value):
        raise _Invalid(f"{what} {str(value)[:40]!r} is not a run id")
    return value


def data_path(value: Any, what: str = "path") -> str:
    """A relative data-file path inside ``clickstream/`` or ``clickstream_rejected/``.

    >>> data_path("clickstream/year=2024/month=1/x.parquet")
    'clickstream/year=2024/month=1/x.parquet'
    """
    rel = _str(value, what, 1024)
    parts = rel.split("/")
    if (
        rel.startswith("/")
        or "\\" in rel
        or posixpath.normpath(rel) != rel
        or any(p in ("", ".", "..") or p.startswith("~") for p in parts)
    ):
        raise _Invalid(f"{what} {rel[:80]!r} is not a plain relative path")
    if len(parts) < 2 or parts[0] not in DATA_FOLDERS or not rel.endswith(".parquet"):
        raise _Invalid(f"{what} {rel[:80]!r} is not a data file of the lake")
    return rel


def _report(data: Any) -> RunReport:
    fields = {
        "run_id", "engine", "lake", "started_at", "finished_at", "full_refresh", "input_files",
        "skipped_files", "rows_read", "rows_written", "rows_rejected", "rejected_by_reason",
        "rows_duplicate", "partitions", "seconds", "rows_per_second",
    }  # fmt: skip
    d = _obj(data, fields, optional={"compacted_runs", "not_read"})
    if not isinstance(d["full_refresh"], bool):
        raise _Invalid("full_refresh is not a boolean")
    inputs = []
    for i, f in enumerate(_list(d["input_files"], "input_files")):
        f = _obj(
            f,
            {"path", "size", "mtime_ns", "rows_read"},
            optional={"ends_with_newline"},
            what=f"input_files[{i}]",
        )
        if not isinstance(f.get("ends_with_newline", True), bool):
            raise _Invalid(f"input_files[{i}].ends_with_newline is not a boolean")
        inputs.append(
            InputFileReport(
                _str(f["path"], "input path"),
                _int(f["size"], "size"),
                _int(f["mtime_ns"], "mtime_ns", None),
                _int(f["rows_read"], "rows_read"),
                f.get("ends_with_newline", True),
            )
        )
    parts = []
    for i, p in enumerate(_list(d["partitions"], "partitions")):
        p = _obj(p, {"year", "month", "rows"}, what=f"partitions[{i}]")
        parts.append(PartitionReport(_int(p["year"], "year"), _int(p["month"], "month"),
                                     _int(p["rows"], "rows")))  # fmt: skip
    not_read = []
    for i, f in enumerate(_list(d.get("not_read", []), "not_read")):
        f = _obj(f, {"path", "reason"}, what=f"not_read[{i}]")
        not_read.append(SkippedFile(_str(f["path"], "not-read path"), _str(f["reason"], "reason")))
    reasons = d["rejected_by_reason"]
    if not isinstance(reasons, dict):
        raise _Invalid("rejected_by_reason is not an object")
    report = RunReport(
        run_id=_run_id(d["run_id"]),
        engine=_str(d["engine"], "engine", 64),
        lake=_str(d["lake"], "lake"),
        started_at=_str(d["started_at"], "started_at", 64),
        finished_at=_str(d["finished_at"], "finished_at", 64),
        full_refresh=d["full_refresh"],
        input_files=inputs,
        skipped_files=[_str(s, "skipped file") for s in _list(d["skipped_files"], "skipped")],
        not_read=not_read,
        rows_read=_int(d["rows_read"], "rows_read"),
        rows_written=_int(d["rows_written"], "rows_written"),
        rows_rejected=_int(d["rows_rejected"], "rows_rejected"),
        rejected_by_reason={_str(k, "reason", 64): _int(v, k) for k, v in reasons.items()},
        rows_duplicate=_int(d["rows_duplicate"], "rows_duplicate"),
        partitions=parts,
        seconds=_num(d["seconds"], "seconds"),
        rows_per_second=_num(d["rows_per_second"], "rows_per_second"),
        compacted_runs=[
            _run_id(r, "compacted run") for r in _list(d.get("compacted_runs", []), "compacted")
        ],
    )
    try:
        report.check()
    except InvariantError as err:
        raise _Invalid(f"counts do not reconcile ({err})") from None
    return report


def _named(name: str, suffix: str) -> str:
    """The run id a metadata file's name carries (``<run_id><suffix>``)."""
    if not name.endswith(suffix):
        raise _Invalid("unexpected file name")
    return _run_id(name[: -len(suffix)], "file name")


def _failed(name: str, what: str, err: _Invalid) -> CorruptMetadataError:
    return CorruptMetadataError(name, f"{name}: invalid {what} ({err}); {_HOW_TO_FIX}")


def run_report(name: str, raw: bytes) -> RunReport:
    """Validate the run report ``name`` (its path or key, for messages) read as ``raw``."""
    try:
        run_id = _named(name.rsplit("/", 1)[-1], REPORT_SUFFIX)
        report = _report(_parse(raw))
        if report.run_id != run_id:
            raise _Invalid(f"run_id {report.run_id} differs from the file name")
        return report
    except _Invalid as err:
        raise _failed(name, "run report", err) from None


def local_commit(name: str, raw: bytes) -> LocalCommit:
    """Validate a local commit log (moves out of ``_staging/<run_id>/``, deletes, the report)."""
    try:
        run_id = _named(name.rsplit("/", 1)[-1], COMMIT_SUFFIX)
        d = _obj(_parse(raw), {"run_id", "moves", "deletes", "report"})
        if _run_id(d["run_id"]) != run_id:
            raise _Invalid("run_id differs from the file name")
        moves = []
        for i, move in enumerate(_list(d["moves"], "moves")):
            pair = _list(move, f"moves[{i}]")
            if len(pair) != 2 or pair[0] != pair[1]:
                raise _Invalid(f"moves[{i}] is not a [path, same path] pair")
            moves.append(data_path(pair[0], f"moves[{i}]"))
        deletes = [data_path(p, f"deletes[{i}]") for i, p in enumerate(_list(d["deletes"], "d"))]
        report = _report(d["report"])
        if report.run_id != run_id:
            raise _Invalid("the report's run_id differs from the log's")
        return LocalCommit(run_id, moves, deletes, report)
    except _Invalid as err:
        raise _failed(name, "commit log", err) from None


def s3_commit(name: str, raw: bytes, prefix: str) -> S3Commit:
    """Validate an S3 commit log; ``prefix`` is the lake's key prefix ('' or ending in '/')."""
    try:
        run_id = _named(name.rsplit("/", 1)[-1], COMMIT_SUFFIX)
        d = _obj(_parse(raw), {"run_id", "uploads", "deletes"})
        if _run_id(d["run_id"]) != run_id:
            raise _Invalid("run_id differs from the file name")
        uploads = [data_path(p, f"uploads[{i}]") for i, p in enumerate(_list(d["uploads"], "u"))]
        deletes = []
        for i, key in enumerate(_list(d["deletes"], "deletes")):
            key = _str(key, f"deletes[{i}]", 1024)
            if not key.startswith(prefix):
                raise _Invalid(f"deletes[{i}] is outside the lake")
            deletes.append(prefix + data_path(key[len(prefix) :], f"deletes[{i}]"))
        return S3Commit(run_id, uploads, deletes)
    except _Invalid as err:
        raise _failed(name, "commit log", err) from None


def check_reports_have_files(reports: list[RunReport], file_names: set[str], where: str) -> None:
    """A report since the last full refresh that claims rows must have its files in the lake.

    Engines name data files ``<run_id>_<n>.parquet`` and ``<run_id>.parquet`` (rejects), and only
    a full refresh deletes them, so a report without them was not written by a run: trusting it
    would make ``etl`` skip inputs that are not in the lake.

    A compaction (``lake.compact``) rewrites runs' table files into its own and names those runs
    in ``compacted_runs``; a report naming any must itself have files, as a run's must.
    """
    start = max((i for i, r in enumerate(reports) if r.full_refresh), default=0)
    absorbed = {run for report in reports[start:] for run in report.compacted_runs}
    for report in reports[start:]:
        if report.run_id in absorbed:
            continue
        mine = any(n.startswith(report.run_id) for n in file_names)
        claims = report.rows_written or report.rows_rejected or report.compacted_runs
        if claims and not mine:
            name = f"{where}/{report.run_id}{REPORT_SUFFIX}"
            raise CorruptMetadataError(
                name,
                f"{name}: run report claims {report.rows_written + report.rows_rejected} rows "
                f"but the lake holds none of its files; {_HOW_TO_FIX}",
            )
