"""SIGTERM (a scheduler's time limit, `kill <pid>`) ends a run the way Ctrl-C does: nothing more
is sent, the answers in flight reach the cache, the teacher servers and Ray are stopped.

Ray's `ray.init` installs its own SIGTERM handlers in the driver (a local node's kills Ray's
processes at once and exits 1), which would skip all of that, so the run's own handler is put
back after Ray starts (pipeline/engine/ray_session.py).
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class Terminated(KeyboardInterrupt):
    """Raised by SIGTERM: every `except KeyboardInterrupt` that stops a run cleanly handles it."""


_received: list[int] = []


def _terminate(signum: int, frame: Any) -> None:
    _received.append(signum)
    raise Terminated


def terminated() -> bool:
    """Whether SIGTERM was received: Ray's `ray.get` raises a plain KeyboardInterrupt in place
    of the one a signal handler raised while it waited."""
    return bool(_received)


def unwind_on_sigterm() -> None:
    """Make SIGTERM raise `Terminated` in the main thread (signals reach only that one)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
