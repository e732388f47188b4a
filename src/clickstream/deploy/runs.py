"""What ``status`` reads from the lake: the last runs' reports (rows read, written, rejected).

EMR knows whether a job run or step succeeded; only the lake knows what it did. The reports are
read through the lake's own reader (``open_store(...).reports()``), which validates every file as
untrusted input, so a damaged report is one clear error, never a traceback.
"""

from __future__ import annotations

from typing import Any

from clickstream.deploy.config import DeploySettings

#: How many of the newest runs ``status`` shows.
SHOWN_RUNS = 5


def lake_runs(s: DeploySettings, count: int = SHOWN_RUNS) -> list[dict[str, Any]]:
    """The ``count`` newest run reports of the deployed lake, newest first."""
    from clickstream.lake.store import open_store

    reports = open_store(s.lake_uri()).reports()
    return [
        {
            "run_id": r.run_id,
            "engine": r.engine,
            "finished": r.finished_at,
            "full_refresh": r.full_refresh,
            "files": len(r.input_files),
            "skipped": len(r.skipped_files),
            "read": r.rows_read,
            "written": r.rows_written,
            "rejected": r.rows_rejected,
            "duplicates": r.rows_duplicate,
        }
        for r in reversed(reports[-count:])
    ]


def describe_run(run: dict[str, Any]) -> str:
    """One line per run, the numbers a reader checks first."""
    refresh = ", full refresh" if run["full_refresh"] else ""
    return (
        f"  {run['run_id']} ({run['engine']}{refresh}) finished {run['finished']}: "
        f"read {run['read']}, written {run['written']}, rejected {run['rejected']}, "
        f"duplicates {run['duplicates']}; {run['files']} new file(s), "
        f"{run['skipped']} already ingested"
    )
