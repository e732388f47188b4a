"""Every stream option is checked before anything starts: one line naming it, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.stream

BAD = [
    ("stats", ["--claim-idle", "0s"], "--claim-idle"),  # members would steal each other's work
    ("stats", ["--claim-idle", "5d"], "--claim-idle"),
    ("stats", ["--lateness", "1000000000d"], "--lateness"),
    ("stats", ["--lateness", "99999999999999999999"], "--lateness"),
    ("stats", ["--window", "100000d"], "--window"),
    ("stats", ["--window", "7s"], "--window"),
    ("stats", ["--batch-size", "0"], "--batch-size"),
    ("stats", ["--batch-size", "100000000000"], "--batch-size"),
    ("stats", ["--idle-exit", "1e300"], "--idle-exit"),
    ("stats", ["--idle-exit", "nan"], "--idle-exit"),
    ("stats", ["--idle-exit", "-1"], "--idle-exit"),
    ("publish", ["--poll", "0"], "--poll"),
    ("publish", ["--poll", "1e12"], "--poll"),
    ("top", ["--duration", "inf"], "--duration"),
]


@pytest.mark.parametrize(("command", "args", "option"), BAD)
def test_a_nonsense_option_is_refused_in_one_line(tmp_path, command, args, option):
    cmd = [sys.executable, "-m", "clickstream", "stream", command, "--lake", str(tmp_path), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and option in result.stderr, result.stderr
    assert not (tmp_path / "_stream").exists()  # no broker was started
