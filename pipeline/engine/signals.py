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

_received: list[int] = []


def _terminate(signum: int, frame: Any) -> None:
    """A KeyboardInterrupt: every `except KeyboardInterrupt` that stops a run cleanly handles
    it; `terminated()` tells the two apart."""
    _received.append(signum)
    raise KeyboardInterrupt


def terminated() -> bool:
    """Whether SIGTERM was received (rather than Ctrl-C): Ray's `ray.get` raises a KeyboardInterrupt
    of its own in place of the one a handler raised while it waited, so no exception type could
    carry it."""
    return bool(_received)


def unwind_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt in the main thread (signals reach only that one)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
