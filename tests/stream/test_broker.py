"""The brokers: the embedded server (shared, persistent, recovers from a stale socket) and a
Redis server that is down (one line after bounded retries; nothing lost when it returns)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from clickstream.errors import ConfigError
from clickstream.stream import broker
from clickstream.stream.publisher import publish
from clickstream.stream.transports import open_transport
from tests.stream.conftest import lake_windows, stream_windows

pytestmark = pytest.mark.stream


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_wheel_ships_a_redis_server_new_enough():
    out = subprocess.run(
        [str(broker.redis_server_binary()), "--version"], capture_output=True, text=True, timeout=10
    ).stdout
    major, minor = (int(x) for x in out.split("v=")[1].split(".")[:2])
    assert (major, minor) >= (6, 2)  # XAUTOCLAIM


def test_one_embedded_server_is_shared_and_survives_a_kill(broker_dir: Path):
    first = broker.ensure_running(broker_dir)
    pid = int((broker_dir / "redis.pid").read_text())
    assert broker.ensure_running(broker_dir) == first  # a second process connects, no new server
    assert int((broker_dir / "redis.pid").read_text()) == pid
    client = redis.Redis(unix_socket_path=str(first))
    client.xadd("clickstream", {"e": b"{}"}, id="1-0")
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert first.exists()  # a stale socket nobody answers on
    again = broker.ensure_running(broker_dir)
    assert int((broker_dir / "redis.pid").read_text()) != pid
    assert redis.Redis(unix_socket_path=str(again)).xlen("clickstream") == 1  # from the AOF


def test_processes_starting_the_broker_at_once_share_one(tmp_path: Path, broker_dir: Path):
    code = (
        "import sys, pathlib; from clickstream.stream import broker; "
        "print(broker.ensure_running(pathlib.Path(sys.argv[1])))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(broker_dir)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outs = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(outs) == 1
    servers = []  # redis-server retitles itself "redis-server unixsocket:<path>"
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes()
        except OSError:
            continue  # the process ended while we looked
        if b"redis-server" in title and str(broker_dir).encode() in title:
            servers.append(cmdline)
    assert len(servers) == 1


def test_unknown_url_scheme_lists_the_valid_ones(tmp_path: Path):
    with pytest.raises(ConfigError, match="redis://"):
        open_transport("mqtt://x/y", str(tmp_path))


@pytest.fixture
def tcp_server(tmp_path: Path) -> Iterator[tuple[str, callable]]:
    """A Redis server on 127.0.0.1 with its AOF in tmp_path; start()/stop() it at will."""
    port = free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    procs: list[subprocess.Popen] = []

    def start() -> None:
        procs.append(
            subprocess.Popen(
                [str(broker.redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1",
                 "--dir", str(folder), "--appendonly", "yes", "--save", ""],
                stdout=subprocess.DEVNULL,
            )
        )  # fmt: skip
        for _ in range(200):
            try:
                redis.Redis(port=port, socket_timeout=1).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)

    def stop() -> None:
        redis.Redis(port=port).shutdown()
        procs[-1].wait(timeout=10)

    start()
    yield f"redis://127.0.0.1:{port}/events", (start, stop)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_broker_down_is_one_line_and_nothing_is_lost(make_lake, tcp_server):
    url, (start, stop) = tcp_server
    lake = make_lake(1500, seed=31)
    assert publish(str(lake), url).events == 1500
    stop()
    cmd = [sys.executable, "-m", "clickstream", "stream", "stats", "--lake", str(lake),
           "--from", url, "--idle-exit", "1", "--consumer", "c1"]  # fmt: skip
    down = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert down.returncode == 1
    assert down.stderr.count("\n") == 1, down.stderr
    assert "127.0.0.1" in down.stderr and "unreachable" in down.stderr
    assert "Traceback" not in down.stderr
    start()
    back = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert back.returncode == 0, back.stderr
    assert stream_windows(lake) == lake_windows(lake)


def test_publish_to_an_unreachable_broker_is_one_line(make_lake):
    lake = make_lake(100, seed=32)
    url = f"redis://127.0.0.1:{free_port()}/events"
    cmd = [
        sys.executable,
        "-m",
        "clickstream",
        "stream",
        "publish",
        "--lake",
        str(lake),
        "--to",
        url,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and url.split("/events")[0] in result.stderr
    # Nothing was marked published: once a broker is there, everything goes out.
    assert not list((lake / "stream" / "_published").glob("*.json"))


@pytest.mark.parametrize("command", ["publish", "stats"])
def test_no_lake_is_one_line(tmp_path: Path, command: str):
    cmd = [sys.executable, "-m", "clickstream", "stream", command, "--lake", str(tmp_path / "nope")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "no lake at" in result.stderr
    assert not (tmp_path / "nope").exists()  # nothing was created


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        ("stats", "--idle-exit", "nan"),
        ("stats", "--idle-exit", "-1"),
        ("stats", "--idle-exit", "inf"),
        ("publish", "--poll", "nan"),
        ("publish", "--poll", "-2"),
        ("publish", "--poll", "0"),
        ("top", "--duration", "nan"),
        ("top", "--duration", "-1"),
    ],
)
def test_non_finite_or_negative_seconds_are_refused_in_one_line(
    tmp_path: Path, command: str, option: str, value: str
):
    cmd = [sys.executable, "-m", "clickstream", "stream", command, "--lake", str(tmp_path / "nope"),
           option, value]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and option in result.stderr
    assert "Traceback" not in result.stderr
