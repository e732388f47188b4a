"""Fault injection for the crash tests: the one place a commit step can be made to die.

Set ``CLICKSTREAM_FAULT=<step>`` and the process SIGKILLs itself when it reaches that step
(``before_commit``, ``mid_commit``, ``after_report``). Unset (always, outside tests),
:func:`fault` does nothing.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "CLICKSTREAM_FAULT"


def fault(step: str) -> None:
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
