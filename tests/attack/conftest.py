"""The attack suite's harness: a lake, an outside world to protect, and a CLI run in a sandbox.

Every test runs `clickstream` as a user would (a subprocess) with HOME and TMPDIR pointed at
fresh folders, then checks: the exit code, a one-line message, every lake file byte-identical,
and nothing created, changed or deleted outside the lake (HOME, TMPDIR, a folder of secrets).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from clickstream.pipeline import EtlOptions, run_etl
from tests.conftest import write_csv

SECRET_TEXT = "TOP-SECRET-7d1e"
ROWS = [
    "u1,https://a.com/x?utm_source=g,1706745599,Chrome,Linux,1x1",
    "u2,https://a.com/y?utm_source=%1b%5d0%3bPWNED%07,1706745600,Firefox,macOS,2x2",
    "u3,https://a.com/z?utm_source=[bold red]x[/],1706745600,Firefox,macOS,2x2",
    "u4,not-a-url,1706745600,Firefox,macOS,2x2",
]


def tree(root: Path) -> dict[str, str]:
    """Every entry under ``root``: file -> sha256, symlink -> its target, folder -> 'dir'."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@dataclass
class Sandbox:
    lake: Path
    home: Path
    tmp: Path
    outside: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clickstream", *args],
            capture_output=True,
            text=True,
            input=stdin if stdin is not None else "",
            env=self.env,
            cwd=self.tmp,
        )

    def sql(self, query: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("sql", query, "-l", str(self.lake), *extra)

    def state(self) -> tuple[dict[str, str], ...]:
        return tree(self.lake), tree(self.home), tree(self.tmp), tree(self.outside)


def one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Assert a failed run said exactly one line on stderr (no traceback) holding fragments."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def built_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("attack-src")
    src = write_csv(tmp / "a.csv", ROWS)
    run_etl(EtlOptions(input=str(src), lake=str(tmp / "lake")))
    return tmp / "lake"


@pytest.fixture
def sandbox(built_lake: Path, tmp_path: Path):
    lake = tmp_path / "lake"
    shutil.copytree(built_lake, lake, symlinks=True)
    home, tmp, outside = tmp_path / "home", tmp_path / "tmp", tmp_path / "outside"
    for folder in (home, tmp, outside):
        folder.mkdir()
    (outside / "secret.txt").write_text(SECRET_TEXT + "\n")
    (outside / "secret.csv").write_text(f"s\n{SECRET_TEXT}\n")
    (home / "secret.txt").write_text(SECRET_TEXT + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DUCKDB"))}
    env.update(HOME=str(home), TMPDIR=str(tmp), TZ="Pacific/Chatham", COLUMNS="200")
    box = Sandbox(lake, home, tmp, outside, env)
    before = box.state()
    yield box
    # Nothing a test did through the CLI may leave a trace: no extension cache in HOME, no
    # spill folder in TMPDIR, the lake and the outside folder exactly as they were, unless the
    # test changed them itself (it then resets ``before`` via box.expect()).
    assert not (home / ".duckdb").exists()
    after = box.state()
    expected = getattr(box, "expected", before)
    assert after == expected
