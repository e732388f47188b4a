"""Hostile commit logs and run reports: refused in one line, never applied, by readers or etl."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.attack.conftest import Sandbox, one_line_error, tree
from tests.conftest import write_csv

RUN = "20240101T000000Z-abcdef"


def _log(**change: object) -> dict[str, object]:
    base: dict[str, object] = {"run_id": RUN, "moves": [], "deletes": [], "report": {}}
    base.update(change)
    return base


COMMIT_LOGS = {
    "traversal-run-id": (RUN, _log(run_id="../../victimdir", deletes=["../victim.txt"])),
    "traversal-delete": (RUN, _log(deletes=["clickstream/../../victim.txt"])),
    "absolute-delete": (RUN, _log(deletes=["/tmp/victim.txt"])),
    "delete-outside-table": (RUN, _log(deletes=["_runs/x.parquet"])),
    "wrong-types": (RUN, _log(moves="clickstream/x.parquet", deletes=[1])),
    "extra-key": (RUN, {**_log(), "rm": ["/"]}),
    "name-traversal": ("..%2f..%2fvictim", _log()),
}


def _plant_victim(box: Sandbox) -> Path:
    victim = box.lake.parent / "victim.txt"
    victim.write_text("keep me")
    (box.lake.parent / "victimdir").mkdir()
    (box.lake.parent / "victimdir" / "file").write_text("keep me")
    return victim


@pytest.mark.parametrize("case", list(COMMIT_LOGS))
def test_hostile_commit_log_is_never_applied(sandbox: Sandbox, case: str) -> None:
    name, body = COMMIT_LOGS[case]
    _plant_victim(sandbox)
    (sandbox.lake / "_runs" / f"{name}.commit.json").write_text(json.dumps(body))
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]
    around = tree(sandbox.lake.parent)
    # A reader refuses (it never recovers), naming the log.
    one_line_error(sandbox.sql("SELECT count(*) FROM clickstream"), "commit.json")
    one_line_error(sandbox.run("catalog", "-o", str(sandbox.tmp / "c.duckdb"), "-l",
                               str(sandbox.lake)), "commit.json")  # fmt: skip
    # A writer validates it and refuses too: nothing deleted, nothing moved.
    src = write_csv(sandbox.outside / "new.csv", ["u9,https://b.com/,1706745600,C,L,1x1"])
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]
    etl = sandbox.run("etl", "-q", "-i", str(src), "-l", str(sandbox.lake))
    one_line_error(etl, "commit log", "not applied")
    assert tree(sandbox.lake.parent) == around | {
        "outside/new.csv": tree(sandbox.outside)["new.csv"]
    }


def test_huge_commit_log_is_refused_without_reading_it_all(sandbox: Sandbox) -> None:
    log = sandbox.lake / "_runs" / f"{RUN}.commit.json"
    with open(log, "wb") as fh:
        fh.truncate(65 * 1024 * 1024)  # sparse: 65 MiB of nothing
    src = write_csv(sandbox.outside / "new.csv", ["u9,https://b.com/,1706745600,C,L,1x1"])
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]
    one_line_error(sandbox.run("etl", "-q", "-i", str(src), "-l", str(sandbox.lake)), "MiB")


def _report(box: Sandbox) -> dict[str, object]:
    path = next(p for p in (box.lake / "_runs").glob("*.json"))
    return json.loads(path.read_text())


def test_forged_report_cannot_make_etl_skip_new_input(sandbox: Sandbox) -> None:
    src = write_csv(sandbox.outside / "new.csv", ["u9,https://b.com/,1706745600,C,L,1x1"])
    stat = src.stat()
    forged = _report(sandbox)
    forged.update(run_id=RUN, full_refresh=False, rows_read=1, rows_written=1, rows_rejected=0,
                  rows_duplicate=0, rejected_by_reason={},
                  partitions=[{"year": 2024, "month": 2, "rows": 1}],
                  input_files=[{"path": str(src), "size": stat.st_size,
                                "mtime_ns": stat.st_mtime_ns, "rows_read": 1}])  # fmt: skip
    forged["finished_at"] = "2999-01-01T00:00:00+00:00"
    report = sandbox.lake / "_runs" / f"{RUN}.json"
    report.write_text(json.dumps(forged))
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]
    etl = sandbox.run("etl", "-q", "-i", str(src), "-l", str(sandbox.lake))
    line = one_line_error(etl, RUN, "none of its files")
    assert "move it out of _runs/" in line
    # The fix the message gives works: the input is then ingested.
    shutil.move(report, sandbox.outside / "forged.json")
    again = sandbox.run("etl", "-q", "-i", str(src), "-l", str(sandbox.lake))
    assert again.returncode == 0, again.stderr
    n = sandbox.sql("SELECT count(*) AS n FROM clickstream", "-f", "csv")
    assert n.stdout == "n\n3\n"
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"not json",
        b"[]",
        b'{"run_id": NaN}',
        b'{"a": 1, "a": 2}',
        b"\xff\xfe",
        b'{"run_id": "20240101T000000Z-abcdef", "rows_read": "9"}',
    ],  # fmt: skip
)
def test_garbage_report_is_one_line_naming_the_file(sandbox: Sandbox, garbage: bytes) -> None:
    (sandbox.lake / "_runs" / f"{RUN}.json").write_bytes(garbage)
    src = write_csv(sandbox.outside / "new.csv", ["u9,https://b.com/,1706745600,C,L,1x1"])
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]
    etl = sandbox.run("etl", "-q", "-i", str(src), "-l", str(sandbox.lake))
    one_line_error(etl, f"{RUN}.json", "invalid run report", "move it out of _runs/")


def test_report_with_type_confusion(sandbox: Sandbox) -> None:
    bad = _report(sandbox)
    bad.update(run_id=RUN, full_refresh="no", rows_written=True)
    (sandbox.lake / "_runs" / f"{RUN}.json").write_text(json.dumps(bad))
    src = write_csv(sandbox.outside / "new.csv", ["u9,https://b.com/,1706745600,C,L,1x1"])
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]
    one_line_error(sandbox.run("etl", "-q", "-i", str(src), "-l", str(sandbox.lake)), RUN)


@pytest.mark.parametrize("planted", ["_lock", "_runs", "_staging", "clickstream_rejected"])
def test_writer_never_writes_through_a_planted_symlink(sandbox: Sandbox, planted: str) -> None:
    victim = sandbox.outside / "victim.txt"
    victim.write_text("keep me")
    link = sandbox.lake / planted
    if link.exists():
        shutil.rmtree(link) if link.is_dir() else link.unlink()
    target = victim if planted == "_lock" else sandbox.outside
    link.symlink_to(target)
    src = write_csv(sandbox.outside / "new.csv", ["u9,https://b.com/,1706745600,C,L,1x1"])
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]
    etl = sandbox.run("etl", "-q", "-i", str(src), "-l", str(sandbox.lake))
    one_line_error(etl, planted)
    assert victim.read_text() == "keep me"
