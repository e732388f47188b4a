"""`stream top`: one snapshot from the lake and the broker; data shown as plain text."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

from clickstream.stream.consumer import ConsumerOptions, run_consumer
from clickstream.stream.live import Snapshot, render
from clickstream.stream.publisher import publish

pytestmark = pytest.mark.stream


def test_top_once_shows_the_committed_statistics(make_lake, broker_dir: Path):
    lake = make_lake(1500, seed=51)
    publish(str(lake))
    run_consumer(ConsumerOptions(lake=str(lake), idle_exit=0.5, consumer="c1"))
    result = subprocess.run(
        [sys.executable, "-m", "clickstream", "stream", "top", "--lake", str(lake), "--once"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1,500" in out  # events counted
    assert "consumer lag" in out and "active visitors" in out and "top pages" in out


def test_values_from_the_data_are_never_markup():
    snap = Snapshot(
        "g",
        watermark=datetime(2024, 3, 1),
        top_pages=[("/[red]boom[/red]", 3), ("/[link=http://x]y", 2)],
        top_sources=[("[bold]google / cpc", 1)],
    )
    console = Console(record=True, width=120)
    console.print(render(snap))
    text = console.export_text()
    assert "/[red]boom[/red]" in text and "/[link=http://x]y" in text and "[bold]google" in text


def test_control_characters_from_the_data_are_shown_escaped():
    evil = "\x1b]0;PWNED\x07\x1b[2J\x9b31m\x7f\u202eabc\u2066"
    snap = Snapshot(
        f"g{evil}",
        watermark=datetime(2024, 3, 1),
        top_pages=[(f"/p{evil}", 3)],
        top_sources=[(f"src{evil} / med\x00", 1)],
    )
    console = Console(file=io.StringIO(), record=True, width=200)
    console.print(render(snap))
    text = console.export_text()
    bad = {"\x1b", "\x07", "\x9b", "\x7f", "\x00", "\u202e", "\u2066"}
    assert not bad & set(text)
    assert "/p\\x1b]0;PWNED\\x07\\x1b[2J\\x9b31m\\x7f\\u202eabc\\u2066" in text
    assert "src\\x1b]0;PWNED" in text and "med\\x00" in text and "g\\x1b]0;PWNED" in text
