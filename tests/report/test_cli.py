"""`clickstream report` as a user runs it: output, progress, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clickstream.report import ReportOptions, build_report


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clickstream", "report", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert proc.stdout == ""


def test_writes_the_file_prints_its_path_and_replaces_an_old_one(demo_lake, tmp_path):
    out = tmp_path / "r.html"
    out.write_text("old")
    proc = cli("--lake", str(demo_lake), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert "report for " in proc.stderr and "MB" in proc.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary file left


def test_a_write_cut_short_leaves_the_old_report(demo_lake, tmp_path):
    """The file-size limit (RLIMIT_FSIZE) stops the write after 64 KB of a report of megabytes
    (Python ignores SIGXFSZ, so the write fails with EFBIG): one line, the old report intact,
    no temporary file left."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))

    out = tmp_path / "r.html"
    out.write_text("old report")
    cmd = [sys.executable, "-m", "clickstream", "report", "--lake", str(demo_lake)]
    cmd += ["--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=limit)
    one_line_error(proc, 2, "--out", "cannot write it", "too large")
    assert out.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_kill_9_at_any_moment_leaves_the_old_or_the_whole_new_report(demo_lake, tmp_path):
    """SIGKILL at moments spread over a whole run: the file is always the old report or the
    complete new one (a killed run may leave its partial temporary file, never the name)."""
    import signal
    import time

    out = tmp_path / "r.html"
    cmd = [sys.executable, "-m", "clickstream", "report", "--lake", str(demo_lake)]
    cmd += ["--out", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    whole = out.read_bytes()
    took = time.perf_counter() - t0
    assert whole.rstrip().endswith(b"</html>")
    outcomes = set()
    for i in range(10):
        out.write_text("old report")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(took * (0.5 + i * 0.06))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        data = out.read_bytes()
        # The same lake gives the same page but for its time stamp.
        new = data.startswith(b"<!DOCTYPE html>") and data.rstrip().endswith(b"</html>")
        assert data == b"old report" or (new and abs(len(data) - len(whole)) < 100), (i, data[-80:])
        outcomes.add(new)
        for stray in tmp_path.glob(".r.html.*.tmp"):
            stray.unlink()
    assert False in outcomes  # some kills landed before the switch


def test_default_out_is_report_html_in_the_working_folder(demo_lake, tmp_path):
    proc = cli("--lake", str(demo_lake), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert (tmp_path / "report.html").is_file()


def test_progress_reports_each_stage_in_order(demo_lake, tmp_path):
    stages: list[tuple[str, float | None]] = []
    build_report(
        ReportOptions(lake=str(demo_lake), out=tmp_path / "r.html"),
        lambda stage, fraction: stages.append((stage, fraction)),
    )
    names = [s for s, _ in stages]
    assert names[0] == "opening the lake" and names[-1] == "done"
    querying = [s for s in names if s.startswith("querying (")]
    total = len(querying)
    assert total >= 8
    assert [s.split(":")[0] for s in querying] == [
        f"querying ({k}/{total}" for k in range(1, total + 1)
    ]
    fractions = [f for _, f in stages if f is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_no_lake(tmp_path):
    one_line_error(
        cli("--lake", str(tmp_path / "none"), "--out", str(tmp_path / "r.html")), 1, "no lake at"
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--from", "2030-01-01", "--to", "2030-01-31"], ["no page views between 2030-01-01"]),
        (["--to", "2023-06-30"], ["no page views", "2024-01-01 to 2024-12-31"]),
        (
            ["--from", "2025-03-01"],
            ["--from 2025-03-01 is after the last day with page views (2024-12-31)"],
        ),
        (["--host", "nowhere.example"], ["no page views on nowhere.example"]),
    ],
)
def test_no_data_in_range(demo_lake, tmp_path, args, words):
    out = tmp_path / "r.html"
    one_line_error(cli("--lake", str(demo_lake), "--out", str(out), *args), 1, *words)
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--from", "2024-13-01"], ["--from", "not a date"]),
        (["--to", "yesterday"], ["--to", "not a date"]),
        (["--from", "2024-1-1"], ["--from", "YYYY-MM-DD"]),
        (["--from", "2024-06-10", "--to", "2024-06-01"], ["after"]),
        (["--host", "  "], ["--host"]),
    ],
)
def test_bad_options(demo_lake, tmp_path, args, words):
    one_line_error(
        cli("--lake", str(demo_lake), "--out", str(tmp_path / "r.html"), *args), 2, *words
    )


def test_unwritable_out(demo_lake, tmp_path):
    lake = str(demo_lake)
    one_line_error(
        cli("--lake", lake, "--out", str(tmp_path / "no" / "r.html")), 2, "does not exist"
    )
    (tmp_path / "file").write_text("x")
    one_line_error(
        cli("--lake", lake, "--out", str(tmp_path / "file" / "r.html")), 2, "not a folder"
    )
    one_line_error(cli("--lake", lake, "--out", str(tmp_path)), 2, "is a folder")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    one_line_error(cli("--lake", lake, "--out", str(fifo)), 2, "not a regular file")
    assert (tmp_path / "file").read_text() == "x"


def test_out_through_a_symlink_writes_the_target(demo_lake, tmp_path):
    real = tmp_path / "real.html"
    real.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to(real)
    assert cli("--lake", str(demo_lake), "--out", str(link), "-q").returncode == 0
    assert link.is_symlink() and real.read_text().startswith("<!DOCTYPE html>")


def test_help_lists_the_options():
    proc = cli("--help")
    for option in ("--lake", "--out", "--from", "--to", "--host"):
        assert option in proc.stdout


def test_demo_ends_by_writing_the_dashboard(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream", "demo", "--rows", "3000"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "report.html"
    assert f"dashboard: {out}" in proc.stdout
    assert 'data-kpi="pageviews"' in out.read_text()


def test_the_printed_path_is_literal_and_has_no_terminal_controls(demo_lake, tmp_path):
    out = tmp_path / "r\x1b]0;PWNED\x07[bold]x[red].html"
    proc = cli("--lake", str(demo_lake), "--out", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert proc.stdout.strip() == str(tmp_path / "r\\x1b]0;PWNED\\x07[bold]x[red].html")
    assert out.is_file()
