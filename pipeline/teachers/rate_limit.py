"""One request and token budget per teacher, shared by every worker of a build.

Providers limit requests per minute (RPM) and tokens per minute (TPM) per key, not per process:
when each Ray worker limits itself, N workers send N times the limit. So the budget is one Ray
actor per teacher (named after its model and endpoint), and every client asks it for a slot
before it sends. The actor only does arithmetic: it hands out send times spaced so that no
minute exceeds either limit, and the caller sleeps until its time, so the actor never blocks.
A 429 moves the start of every later slot past the server's `Retry-After`.

Outside Ray (a client used on its own) the same budget lives in the process.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

# Aim a little under the limits: requests bunch up on the way to the server.
SAFETY = 0.98


class Budget:
    """Send times under RPM and TPM limits (None: unlimited)."""

    def __init__(self, rpm: float | None, tpm: float | None) -> None:
        self.rpm = rpm * SAFETY if rpm else None
        self.tpm = tpm * SAFETY if tpm else None
        self.next_request = 0.0  # earliest time the next request may go
        self.next_tokens = 0.0  # earliest time the next tokens may go
        self.paused_until = 0.0
        self.granted = 0
        self.throttled = 0

    def reserve(self, tokens: int, now: float | None = None) -> float:
        """Reserve a slot for a request of about `tokens` tokens; returns seconds to wait."""
        now = time.time() if now is None else now
        start = max(now, self.paused_until, self.next_request, self.next_tokens)
        if self.rpm:
            self.next_request = start + 60.0 / self.rpm
        if self.tpm:
            # a request larger than the whole minute's budget still goes, alone
            self.next_tokens = start + 60.0 * min(tokens, self.tpm) / self.tpm
        self.granted += 1
        return start - now

    def throttle(self, retry_after_s: float, now: float | None = None) -> None:
        """The server refused with 429: nobody sends before `retry_after_s` from now."""
        now = time.time() if now is None else now
        self.paused_until = max(self.paused_until, now + retry_after_s)
        self.throttled += 1

    def counts(self) -> dict[str, int]:
        return {"granted": self.granted, "throttled": self.throttled}


def budget_name(teacher_cfg: Any) -> str:
    where = getattr(teacher_cfg, "base_url", None)  # API backends: the endpoint the key is for
    ident = f"{teacher_cfg.model}|{where}|{teacher_cfg.rpm}|{teacher_cfg.tpm}"
    return "rubricforge-budget-" + hashlib.sha256(ident.encode()).hexdigest()[:16]


_LOCAL: dict[str, Budget] = {}


class SharedBudget:
    """The client's handle: the build-wide actor under Ray, an in-process budget otherwise."""

    def __init__(self, teacher_cfg: Any) -> None:
        self.local: Budget | None = None
        self.actor: Any = None
        if not (teacher_cfg.rpm or teacher_cfg.tpm):
            return
        import ray

        name = budget_name(teacher_cfg)
        if ray.is_initialized():
            # Restarted if its worker dies; the new one forgets the last minute's sends, and
            # a 429 that may follow pauses every worker as usual.
            self.actor = ray.remote(Budget).options(
                name=name, get_if_exists=True, num_cpus=0, max_concurrency=1,
                max_restarts=-1, max_task_retries=-1).remote(teacher_cfg.rpm, teacher_cfg.tpm)
        else:  # every client of this process shares one
            self.local = _LOCAL.setdefault(name, Budget(teacher_cfg.rpm, teacher_cfg.tpm))

    @property
    def limited(self) -> bool:
        return self.local is not None or self.actor is not None

    async def wait(self, tokens: int) -> None:
        if self.actor is not None:
            delay = await self.actor.reserve.remote(tokens)
        elif self.local is not None:
            delay = self.local.reserve(tokens)
        else:
            return
        if delay > 0:
            await asyncio.sleep(delay)

    async def throttle(self, retry_after_s: float) -> None:
        if self.actor is not None:
            await self.actor.throttle.remote(retry_after_s)
        elif self.local is not None:
            self.local.throttle(retry_after_s)
