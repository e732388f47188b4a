"""A broker that accepts TCP connections and never answers: every stream command ends with one
line naming the endpoint after bounded retries (it used to hang for minutes: redis-py's retries
nest, connect x handshake x health-check PING x command)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.stream, pytest.mark.slow]

#: Hard bound per command: the retry budget (15 s) + one socket timeout (5 s), with room for a
#: loaded machine. Kinesis: 3 botocore attempts x 10 s read timeout.
HARD_TIMEOUT_S = 90


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A real TCP server on 127.0.0.1 that accept()s every connection and never writes."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # kept open, never answered

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    server.close()
    for conn in held:
        conn.close()


def test_every_command_ends_in_one_line_against_a_silent_server(make_lake, silent_server, tmp_path):
    lake = str(make_lake(200, seed=41))
    redis_url = f"redis://127.0.0.1:{silent_server}/events"
    aws = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent_server}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    commands = {
        "redis publish": (["publish", "--lake", lake, "--to", redis_url], {}),
        "redis stats": (["stats", "--lake", lake, "--from", redis_url, "--idle-exit", "1"], {}),
        "redis top": (["top", "--lake", lake, "--from", redis_url, "--once"], {}),
        "kinesis publish": (["publish", "--lake", lake, "--to", "kinesis://events"], aws),
        "kinesis stats": (
            ["stats", "--lake", lake, "--from", "kinesis://events", "--idle-exit", "1"],
            aws,
        ),
    }
    # All at once: each mostly waits on the silent server, so together they take one's time.
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "clickstream", "stream", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
            cwd=tmp_path,
        )
        for name, (args, env) in commands.items()
    }
    results = {}
    try:
        for name, proc in procs.items():
            try:
                out, err = proc.communicate(timeout=HARD_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"{name} did not end within {HARD_TIMEOUT_S}s (hangs on a silent broker)"
                )
            results[name] = (proc.returncode, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for name, (code, err) in results.items():
        assert code == 1, (name, err)
        assert err.count("\n") == 1, (name, err)
        assert "Traceback" not in err
        assert f"127.0.0.1:{silent_server}" in err, (name, err)
        assert "unreachable" in err, (name, err)
    # Nothing was marked published on either broker (Kinesis saves its checkpoint before a chunk).
    for checkpoint in (Path(lake) / "stream" / "_published").glob("*.json"):
        runs = json.loads(checkpoint.read_text())["runs"]
        assert runs and all(r["published"] == 0 for r in runs), runs
