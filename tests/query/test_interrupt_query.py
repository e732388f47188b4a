"""Ctrl-C while DuckDB runs a query is the user's interrupt: one line, exit 130, for `sql` and
`etl` (DuckDB reports it as an exception of its own, not a KeyboardInterrupt)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from clickstream.pipeline import EtlOptions, run_etl
from tests.conftest import write_csv

SLOW = (
    "SELECT sum(hash(a.event_id || b.event_id || c.event_id)) FROM clickstream a, clickstream b, "
    "clickstream c"
)


def test_sigint_inside_a_long_query_is_one_line_and_exit_130(tmp_path: Path) -> None:
    lines = [
        f"u{i % 7},https://shop.example.com/p{i},{1706745600 + i}.5,Chrome,Linux,1x1"
        for i in range(400)
    ]
    lake = tmp_path / "lake"
    run_etl(EtlOptions(input=str(write_csv(tmp_path / "a.csv", lines)), lake=str(lake)))
    cmd = [sys.executable, "-m", "clickstream", "sql", "-l", str(lake), "-f", "csv", SLOW]
    # SIGINT at its default even when the test runner was started in the background (where a
    # shell ignores it, and the child would inherit that).
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(3)  # well inside the query (400^3 rows): start-up takes < 1 s
    assert proc.poll() is None, "the query ended before the interrupt"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted"), stderr
    assert stdout == ""
