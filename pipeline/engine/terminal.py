"""The terminal shows rubricforge's own lines; everything else a run writes goes to its log.

Ray, vLLM and datasets write to the process's standard output and error from Python and from
C++ (Ray's core worker logs at its own levels; Ray echoes its workers' lines; datasets draws a
bar per file), and Ray's daemons and workers inherit those descriptors when they start. So the
descriptors themselves are pointed at the log file for the run, and rubricforge's logger and its
progress display write to a copy of the terminal kept aside. An exception still reaches the
terminal: the descriptors are restored before it leaves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

log = logging.getLogger("rubricforge")


@contextlib.contextmanager
def others_to_log(log_path: Path) -> Iterator[TextIO]:
    """While inside, standard output and error go to `log_path` (appended); yields the terminal
    (the former standard error) for rubricforge's lines, which go to the log too."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")
    handler = logging.StreamHandler(terminal)
    # on a terminal, a line starts by clearing a step's running line (`step_line` redraws it)
    clear = "\r\x1b[K" if terminal.isatty() else ""
    handler.setFormatter(logging.Formatter(clear + "%(asctime)s %(name)s: %(message)s",
                                           "%H:%M:%S"))
    with open(log_path, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    log.addHandler(handler)
    try:
        yield terminal
    finally:
        log.removeHandler(handler)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        terminal.close()


@contextlib.contextmanager
def step_line(terminal: TextIO, step: str, last_s: float | None,
              every_s: float = 0.5) -> Iterator[None]:
    """On a terminal, one line while a step runs: its name, its time so far, and what the same
    step took in the last build of this output (its ETA); cleared when the step is done (its
    "done in" line follows). Teacher steps have their own display (requests, rate, ETA, cost).
    Nothing when the output is not a terminal: a log gets the "done in" lines only."""
    if not terminal.isatty():
        yield
        return
    stop = threading.Event()
    start = time.monotonic()

    def draw() -> None:
        while not stop.wait(every_s):
            took = time.monotonic() - start
            left = last_s - took if last_s else 0.0
            eta = (f", about {left:.0f}s left" if left >= 1 else "") + (
                f" (last build: {last_s:.0f}s)" if last_s else "")
            terminal.write(f"\r{step}: running {took:.0f}s{eta}\x1b[K")
            terminal.flush()

    thread = threading.Thread(target=draw, name="step-line", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        terminal.write("\r\x1b[K")
        terminal.flush()
