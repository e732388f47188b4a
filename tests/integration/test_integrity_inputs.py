"""Inputs that cannot be counted or read: one line on stderr naming the file, exit 1, no write."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import HEADER, write_csv

ROW = "u1,https://a.com/,1706745600,Chrome,Linux,1x1"


def etl(src: Path | str, lake: Path, *extra: str) -> tuple[int, str]:
    """Run ``clickstream etl``; returns the exit code and the only non-blank stderr line."""
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream", "etl", "-i", str(src), "-l", str(lake), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "unexpected error" not in lines[0]
    assert not (lake / "_runs").exists() or not any((lake / "_runs").glob("*.json"))
    assert not any(lake.glob("clickstream/**/*.parquet"))
    return proc.returncode, lines[0]


def test_a_stray_cr_inside_a_record_names_file_and_line(tmp_path: Path) -> None:
    # DuckDB's reader failed the whole scan with a ~600-character message.
    src = tmp_path / "cr.csv"
    src.write_bytes(
        f"{HEADER}\n{ROW}\nu2,https://a.com/x\ry,1706745600,Chrome,Linux,1x1\n".encode()
    )
    code, message = etl(src, tmp_path / "lake")
    assert code == 1 and len(message) < 300
    assert "cr.csv: line 3: a carriage return" in message


def test_a_cr_inside_quotes_is_data(tmp_path: Path) -> None:
    src = tmp_path / "crq.csv"
    src.write_bytes(f'{HEADER}\n{ROW}\nu2,https://a.com/,1706745600,"Ch\rome",Linux,1x1\n'.encode())
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream", "etl", "-i", str(src), "-l", str(tmp_path / "lk")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_a_cr_only_file_is_named(tmp_path: Path) -> None:
    src = tmp_path / "mac.csv"
    src.write_bytes(f"{HEADER}\r{ROW}\r".encode())
    code, message = etl(src, tmp_path / "lake")
    assert code == 1 and "mac.csv: line 1: a carriage return" in message


@pytest.mark.parametrize(
    ("name", "make", "says"),
    [
        ("zip.csv", "zip", "this is a zip archive, not CSV text"),
        ("gz.csv", "gz", "gzip data without a .gz suffix"),
        ("nul.csv", "nul", "NUL bytes"),
        ("utf16.csv", "utf16", "UTF-16"),
    ],
)
def test_a_binary_file_named_csv_is_named(tmp_path: Path, name: str, make: str, says: str) -> None:
    src = tmp_path / name
    text = f"{HEADER}\n{ROW}\n"
    if make == "zip":
        with zipfile.ZipFile(src, "w") as archive:
            archive.writestr("inner.csv", text)
    elif make == "gz":
        src.write_bytes(gzip.compress(text.encode()))
    elif make == "nul":
        src.write_bytes(b"\x00" * 10 + text.encode())
    else:
        src.write_bytes(text.encode("utf-16"))
    code, message = etl(src, tmp_path / "lake")
    assert code == 1 and f"{name}: " in message and says in message


def test_nul_padding_after_a_gzip_member_is_refused(tmp_path: Path) -> None:
    # Tape and block devices pad gzip files with NULs; gzip(1) ignores them, we refuse.
    src = tmp_path / "pad.csv.gz"
    src.write_bytes(gzip.compress(f"{HEADER}\n{ROW}\n".encode()) + b"\x00" * 4096)
    code, message = etl(src, tmp_path / "lake")
    assert code == 1 and "pad.csv.gz: data after the end of the gzip stream" in message


@pytest.mark.parametrize("column", ["url", "anonymous_user_id", "screen_resolution"])
def test_a_required_column_named_twice_is_refused(tmp_path: Path, column: str) -> None:
    src = write_csv(tmp_path / "dup.csv", [f"{ROW},x"], header=f"{HEADER},{column.upper()} ")
    code, message = etl(src, tmp_path / "lake")
    assert code == 1 and f"dup.csv: the header names column '{column}' twice" in message


def test_an_extra_column_named_twice_is_fine(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "ok.csv", [f"{ROW},x,y"], header=f"{HEADER},extra,extra")
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream", "etl", "-i", str(src), "-l", str(tmp_path / "lk")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_input_that_is_a_fifo_socket_or_device_says_what_it_is(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    code, message = etl(fifo, tmp_path / "lake")
    assert code == 1 and message == f"error: {fifo}: not a regular file or folder (a FIFO)"
    sock_path = tmp_path / "s.csv"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        code, message = etl(sock_path, tmp_path / "lake")
    assert code == 1 and message.endswith("not a regular file or folder (a socket)")
    code, message = etl("/dev/null", tmp_path / "lake")
    assert code == 1 and message.endswith(
        "/dev/null: not a regular file or folder (a character device)"
    )


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--threads", "99999999999"), "invalid --threads 99999999999 (1 to 1024"),
        (("--threads", "1025"), "invalid --threads 1025 (1 to 1024"),
        (("--threads", "-1"), "invalid --threads -1"),
        (
            ("--memory-limit", "1KB"),
            "invalid memory limit '1KB' (--memory-limit: 64MiB to 1024TiB)",
        ),
        (
            ("--memory-limit", "99999999TB"),
            "invalid memory limit '99999999TB' (--memory-limit: 64MiB",
        ),
        (("--memory-limit", "-5GB"), "invalid memory limit '-5GB' (--memory-limit takes a size"),
        (("--memory-limit", "5PB"), "invalid memory limit '5PB' (--memory-limit takes a size"),
        (("--memory-limit", "1e3GB"), "invalid memory limit '1e3GB' (--memory-limit takes a size"),
    ],
)
def test_engine_sizes_out_of_bounds_are_one_line(
    tmp_path: Path, flags: tuple[str, ...], says: str
) -> None:
    src = write_csv(tmp_path / "ok.csv", [ROW])
    code, message = etl(src, tmp_path / "lake", *flags)
    assert code == 2 and says in message


@pytest.mark.parametrize(("flags"), [("--threads", "1024"), ("--memory-limit", "64MiB")])
def test_engine_sizes_at_the_bounds_run(tmp_path: Path, flags: tuple[str, ...]) -> None:
    src = write_csv(tmp_path / "ok.csv", [ROW])
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream", "etl", "-i", str(src), "-l", str(tmp_path / "lk")]
        + list(flags),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
