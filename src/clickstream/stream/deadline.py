"""Hard time bounds on broker calls, and the process-wide "stop now" a signal sets.

A socket timeout bounds each *read*, not a call: a server that sends one byte every few seconds
resets it forever (a "drip" broker held every stream command indefinitely). So each broker call
runs in a daemon thread and the caller waits on a monotonic deadline; a call still running at the
deadline is abandoned (its thread dies with the process) and the caller gets ``CallTimedOut``.

SIGINT/SIGTERM call ``interrupt()``: from then on every broker call has at most ``GRACE_S`` left,
so a healthy broker still lets the batch in hand commit and acknowledge (milliseconds), and a
stuck one cannot hold the process. Lock-free: safe to call from a signal handler.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: After a stop signal, a broker call gets at most this long.
GRACE_S = 3.0

_interrupted_at: list[float] = []


class CallTimedOut(Exception):
    """The call did not finish by its deadline (or within the grace after a stop signal)."""

    def __init__(self, interrupted: bool) -> None:
        super().__init__("stopped by a signal" if interrupted else "no complete answer in time")
        self.interrupted = interrupted


def interrupt() -> None:
    """Bound every broker call from now on by GRACE_S (called from signal handlers)."""
    if not _interrupted_at:
        _interrupted_at.append(time.monotonic())


def interrupted() -> bool:
    return bool(_interrupted_at)


def reset() -> None:
    """Forget an earlier interrupt (tests running several commands in one process)."""
    _interrupted_at.clear()


def effective(deadline: float) -> tuple[float, bool]:
    """The deadline after any stop signal, and whether the signal made it shorter."""
    if _interrupted_at and _interrupted_at[0] + GRACE_S < deadline:
        return _interrupted_at[0] + GRACE_S, True
    return deadline, False


def call_by(deadline: float, fn: Callable[[], T]) -> T:
    """``fn()`` if it returns by ``deadline`` (time.monotonic), else ``CallTimedOut``."""
    box: dict[str, object] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # handed to the caller's thread
            box["error"] = err
        finally:
            done.set()

    threading.Thread(target=run, daemon=True, name="clickstream-broker-call").start()
    while True:
        limit, by_signal = effective(deadline)
        left = limit - time.monotonic()
        # Short waits: a stop signal that arrives meanwhile shortens the deadline.
        if done.wait(max(0.0, min(left, 0.25))):
            break
        if time.monotonic() >= limit:
            raise CallTimedOut(by_signal)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
