"""A broker that answers one byte every second: a per-read socket timeout never fires, so only a
hard monotonic deadline per call ends the command (it used to hang forever, SIGTERM ignored)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

pytestmark = [pytest.mark.stream, pytest.mark.slow]

#: Hang guard only: the Redis deadline is 20 s per call, Kinesis 35 s.
HARD_TIMEOUT_S = 120


class Drip:
    """A real TCP server: reads the request, then sends '+' and one more byte every second."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = int(self.server.getsockname()[1])
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def drip(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            self.connected.set()
            conn.sendall(b"+")
            while not self.stop.wait(1.0):
                conn.sendall(b"a")
        except OSError:
            pass
        finally:
            conn.close()

    def serve(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self.drip, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.server.close()


@pytest.fixture
def drips() -> Iterator[Callable[[], Drip]]:
    made: list[Drip] = []

    def new() -> Drip:
        made.append(Drip())
        return made[-1]

    yield new
    for drip in made:
        drip.close()


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


def test_a_drip_broker_ends_every_command_and_sigterm_stops_it(make_lake, drips, tmp_path):
    lake = str(make_lake(200, seed=43))
    shared = drips()
    url = f"redis://127.0.0.1:{shared.port}/events"
    bounded = {
        "redis publish": (["publish", "--lake", lake, "--to", url], {}),
        "redis stats": (["stats", "--lake", lake, "--from", url, "--idle-exit", "1"], {}),
        "redis top": (["top", "--lake", lake, "--from", url, "--once"], {}),
        "kinesis publish": (
            ["publish", "--lake", lake, "--to", "kinesis://events"], aws_env(shared.port),
        ),
        "kinesis stats": (
            ["stats", "--lake", lake, "--from", "kinesis://events", "--idle-exit", "1"],
            aws_env(shared.port),
        ),
    }  # fmt: skip
    # Each signalled command has its own drip server, to know when it is waiting on it.
    own = {name: drips() for name in ("redis stats", "redis publish", "kinesis stats")}
    signalled = {
        "redis stats": (
            ["stats", "--lake", lake, "--from", f"redis://127.0.0.1:{own['redis stats'].port}/e"],
            {}, signal.SIGTERM,
        ),
        "redis publish": (
            ["publish", "--lake", lake, "--to", f"redis://127.0.0.1:{own['redis publish'].port}/e"],
            {}, signal.SIGINT,
        ),
        "kinesis stats": (
            ["stats", "--lake", lake, "--from", "kinesis://events"],
            aws_env(own["kinesis stats"].port), signal.SIGTERM,
        ),
    }  # fmt: skip
    procs = {name: start(args, env, tmp_path) for name, (args, env) in bounded.items()}
    stopped = {name: start(args, env, tmp_path) for name, (args, env, _) in signalled.items()}
    for name, proc in stopped.items():
        assert own[name].connected.wait(HARD_TIMEOUT_S), name  # waiting on the drip now
        proc.send_signal(signalled[name][2])
    results = {name: finish(name, proc) for name, proc in procs.items()}
    signalled_results = {name: finish(name, proc) for name, proc in stopped.items()}
    for name, (code, err) in [*results.items(), *signalled_results.items()]:
        assert code == 1, (name, err)
        assert err.strip() and "Traceback" not in err, (name, err)
        last = err.strip().splitlines()[-1]
        assert "unreachable" in last or "stopped while" in last, (name, err)
    for name, (_, err) in results.items():
        assert err.count("\n") == 1, (name, err)
        assert "no complete answer within" in err, (name, err)
    for name, (_, err) in signalled_results.items():  # the signal, not the deadline, ended them
        assert "of the stop signal" in err, (name, err)
