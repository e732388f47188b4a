"""The stream commands and an s3:// lake: refused in one line, before any broker or bucket is
touched (the batch files are committed with local renames and fsyncs); and `top` on a lake with
nothing published yet shows an empty view instead of failing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stream


@pytest.mark.parametrize(
    "args",
    [["publish"], ["stats", "--idle-exit", "1"], ["top", "--once"], ["rollup"]],
    ids=lambda a: a[0],
)
def test_an_s3_lake_is_refused_in_one_line(tmp_path: Path, args: list[str]):
    env = {
        **os.environ,
        # Nothing may be reached: a closed port as the endpoint, a cache that must stay empty.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    env.pop("CLICKSTREAM_BROKER_DIR", None)
    cmd = [sys.executable, "-m", "clickstream", "stream", *args, "--lake", "s3://bucket/lake"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"stream {args[0]} needs a local lake" in result.stderr
    assert "s3://bucket/lake" in result.stderr
    assert not (tmp_path / "cache").exists()  # no embedded broker was started for it


def test_top_before_anything_is_published_is_an_empty_view(make_lake, broker_dir: Path):
    lake = make_lake(100, seed=52)
    result = subprocess.run(
        [sys.executable, "-m", "clickstream", "stream", "top", "--lake", str(lake), "--once"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "consumer lag" in result.stdout
