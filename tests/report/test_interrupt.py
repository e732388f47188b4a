"""Ctrl-C at any moment of `clickstream report` ends with one line and exit 130, never a traceback
(also while typer, pydantic or DuckDB are still being imported)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

#: The console script's own code (`from clickstream.cli import main; sys.exit(main())`), after a
#: line that says the interpreter is up: delays count from there, not from the fork (an
#: interrupt during Python's own start-up, before any project code runs, is not ours to handle).
ENTRY = (
    "import sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); "
    "from clickstream.cli import main; sys.argv[0] = 'clickstream'; sys.exit(main())"
)


@pytest.mark.parametrize("delay", [0.05, 0.1, 0.2])
def test_sigint_early_is_one_line_and_exit_130(demo_lake, tmp_path, delay):
    out = tmp_path / "r.html"
    proc = subprocess.Popen(
        [sys.executable, "-c", ENTRY, "report", "--lake", str(demo_lake), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT at its default even under a runner started in the background (shells ignore it
        # there, and the child would inherit that).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == 130, (proc.returncode, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), stderr
    assert stdout == ""
    assert not out.exists()
