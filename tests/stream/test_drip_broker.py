"""A broker that answers one byte every second: a per-read socket timeout never fires, so only a
hard monotonic deadline per call ends the command (it used to hang forever, SIGTERM ignored)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

pytestmark = [pytest.mark.stream, pytest.mark.slow]

#: Hang guard only: the Redis deadline is 20 s per call, Kinesis 35 s.
HARD_TIMEOUT_S = 120


@pytest.fixture
def drip_server() -> Iterator[int]:
    """A real TCP server: reads the request, then sends '+' and one more byte every second."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"+")
            while not stop.wait(1.0):
                conn.sendall(b"a")
        except OSError:
            pass
        finally:
            conn.close()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    server.close()


def aws_env(port: int) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def start(args: list[str], env: dict[str, str], cwd) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "clickstream", "stream", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
    )


def finish(name: str, proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=HARD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{name} did not end within {HARD_TIMEOUT_S}s against a drip broker")
    return proc.returncode, err


def test_a_drip_broker_ends_every_command_and_sigterm_stops_it(make_lake, drip_server, tmp_path):
    lake = str(make_lake(200, seed=43))
    url = f"redis://127.0.0.1:{drip_server}/events"
    aws = aws_env(drip_server)
    bounded = {
        "redis publish": (["publish", "--lake", lake, "--to", url], {}),
        "redis stats": (["stats", "--lake", lake, "--from", url, "--idle-exit", "1"], {}),
        "redis top": (["top", "--lake", lake, "--from", url, "--once"], {}),
        "kinesis publish": (["publish", "--lake", lake, "--to", "kinesis://events"], aws),
        "kinesis stats": (
            ["stats", "--lake", lake, "--from", "kinesis://events", "--idle-exit", "1"],
            aws,
        ),
    }
    signalled = {
        "redis stats, SIGTERM": (["stats", "--lake", lake, "--from", url], {}, signal.SIGTERM),
        "redis publish, SIGINT": (
            ["publish", "--lake", lake, "--to", url + "2"], {}, signal.SIGINT,
        ),
        "kinesis stats, SIGTERM": (
            ["stats", "--lake", lake, "--from", "kinesis://events"], aws, signal.SIGTERM,
        ),
    }  # fmt: skip
    procs = {name: start(args, env, tmp_path) for name, (args, env) in bounded.items()}
    stopped = {name: start(args, env, tmp_path) for name, (args, env, _) in signalled.items()}
    time.sleep(4.0)  # they are all waiting on the drip by now
    for name, proc in stopped.items():
        proc.send_signal(signalled[name][2])
    results = {name: finish(name, proc) for name, proc in {**procs, **stopped}.items()}
    for name, (code, err) in results.items():
        assert code == 1, (name, err)
        assert err.strip() and "Traceback" not in err, (name, err)
        last = err.strip().splitlines()[-1]
        assert "unreachable" in last or "stopped while" in last, (name, err)
    for name in bounded:
        assert results[name][1].count("\n") == 1, (name, results[name][1])
        assert "no complete answer within" in results[name][1], (name, results[name][1])
    for name in signalled:  # the signal, not the deadline, ended them
        assert "of the stop signal" in results[name][1], (name, results[name][1])
