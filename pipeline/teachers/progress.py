"""Live progress of the teacher stages, drawn on the driver from the build's spend meters.

The requests run in Ray workers; the meters (pipeline/teachers/spend.py) add up what they send, so the
driver polls them and shows, per stage: requests done of those the cache could not answer,
requests/s, tokens/s, errors and retries, cost so far and the cost projected for the stage.
On a terminal these are tqdm bars; in a log, one line per stage every `log_every_s`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from typing import Any, TextIO

log = logging.getLogger("rubricforge")


def describe(stage: dict[str, Any], expected: int, cap: float | None, now: float) -> str:
    """One stage's numbers in one line."""
    done = stage["answered"] + stage["errors"]
    secs = max((stage["last_done"] if done >= expected else now) - stage["first_sent"], 1e-9)
    rate = done / secs if stage["first_sent"] else 0.0
    tokens = (stage["prompt_tokens"] + stage["completion_tokens"]) / secs if done else 0.0
    projected = stage["cost_usd"] / done * expected if done else 0.0
    text = (f"{done}/{expected} asked, {rate:.1f} req/s, {tokens:,.0f} tok/s, "
            f"{stage['errors']} errors, {stage['retries']} retries, ${stage['cost_usd']:.2f} "
            f"(projected ${projected:.2f})")
    if cap is not None:
        text += f", cap ${cap:.2f}"
    if stage["refused"]:
        text += f", {stage['refused']} not sent (cost cap)"
    left = expected - done - stage["refused"]
    if left > 0 and rate > 0:
        text += f", ETA {clock(left / rate)}"
    return text


def clock(seconds: float) -> str:
    """3h05m, 4m07s or 12s: how long, at a glance."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class TeacherProgress:
    """Polls the meters every `interval_s` while the build runs; `close` returns the last
    snapshot of each meter."""

    def __init__(self, meters: dict[str, Any], terminal: TextIO | None = None,
                 interval_s: float = 1.0, log_every_s: float = 30.0) -> None:
        self.meters = meters
        self.interval_s, self.log_every_s = interval_s, log_every_s
        # stage -> (key, model, requests known, whether chains add to them)
        self.expected: dict[str, tuple[str, str, int, bool]] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.bars: dict[str, Any] = {}
        self.finished: set[str] = set()
        self.terminal = terminal or sys.stderr
        self.tty = self.terminal.isatty()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="teacher-progress", daemon=True)
        self.thread.start()

    def expect(self, stage: str, teacher_key: str, model: str, requests: int,
               chained: bool = False) -> None:
        """The engine found `requests` uncached requests for `stage`: show a bar for them. A
        stage asked in chains (`chained`) counts its requests as the chains find them."""
        _, _, known, was = self.expected.get(stage, (teacher_key, model, 0, False))
        if requests or chained:
            self.expected[stage] = (teacher_key, model, known + requests, chained or was)

    def _poll(self) -> None:
        import ray

        for key, meter in self.meters.items():
            with contextlib.suppress(Exception):  # a meter being restarted: keep the last
                self.snapshots[key] = ray.get(meter.snapshot.remote(), timeout=10)

    def _draw(self, last_log: dict[str, float], final: bool = False) -> None:
        now = time.time()
        for stage, (key, model, known, chained) in self.expected.items():
            snap = self.snapshots.get(key, {})
            numbers = snap.get("stages", {}).get(stage)
            if not numbers or not numbers["first_sent"]:
                continue
            expected = known + numbers["queued"]
            line = describe(numbers, expected, snap.get("cap_usd"), now)
            done = numbers["answered"] + numbers["errors"] + numbers["refused"]
            if self.tty:
                from tqdm import tqdm

                bar = self.bars.get(stage)
                if bar is None:
                    bar = self.bars[stage] = tqdm(total=expected, desc=f"{stage} ({model})",
                                                  unit="req", leave=True, dynamic_ncols=True,
                                                  file=self.terminal)
                bar.total = expected
                bar.n = min(done, expected)
                bar.set_postfix_str(line.split(", ", 1)[1], refresh=True)
            elif stage not in self.finished and (
                    final or (done >= expected and not chained)
                    or now - last_log.get(stage, 0.0) >= self.log_every_s):
                # a chained stage's total grows while the chains run: its last line is the
                # one written when the display closes
                log.warning("%s: teacher %s: %s", stage, model, line)
                last_log[stage] = now
                if final or (done >= expected and not chained):
                    self.finished.add(stage)

    def _run(self) -> None:
        last_log: dict[str, float] = {}
        while not self.stop.wait(self.interval_s):
            self._poll()
            self._draw(last_log)

    def close(self) -> dict[str, dict[str, Any]]:
        """Stop polling and return the last snapshots; a second call only returns them."""
        if self.stop.is_set():
            return self.snapshots
        self.stop.set()
        self.thread.join(timeout=30)
        self._poll()
        if not self.tty:
            self._draw({}, final=True)
        for bar in self.bars.values():
            bar.close()
        return self.snapshots
