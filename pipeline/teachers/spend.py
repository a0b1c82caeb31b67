"""What a build's teacher calls cost, added up across every worker, and the cap that stops them.

One meter per teacher setting (`teacher`, `teacher2`) per build: under Ray a named actor the
engine creates, so the spend of every worker is one number. A request is sent only if what is
spent, plus the worst case of the requests in flight, plus its own worst case (its prompt tokens
and `max_tokens` at the configured prices) stays within `max_cost_usd`, so the cap is never
passed however many requests are in flight; it waits while the requests in flight may still
leave room, and is refused once what is spent leaves none. When an answer returns, its worst
case is replaced by what its usage says it cost. Requests refused are not sent; their rows are
rejected as `cost_cap`, and a rerun with a higher cap asks only those (everything answered is
in the cache).

The meter also counts, per stage, what the driver's progress bars show.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.rules.verdict import COST_CAP


def not_sent_error(teacher_cfg: Any, answer: str) -> str:
    """The error of a request the meter held back: the cap (its row is rejected as
    `cost_cap`), or an interrupted build (whose rows are never written)."""
    if answer == "stop":
        return "interrupted: not sent"
    return (f"{COST_CAP}: not sent, max_cost_usd={teacher_cfg.max_cost_usd} of "
            f"{teacher_cfg.model} reached; raise it and rerun")


@dataclass
class StageSpend:
    """One stage's calls in this run (cached answers cost nothing and are counted apart)."""

    sent: int = 0
    answered: int = 0
    cached: int = 0
    errors: int = 0
    retries: int = 0
    refused: int = 0
    # requests a chain found uncached and will send (a later pass's total is not known before)
    queued: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # of prompt_tokens: read from and written to the provider's prompt cache
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    first_sent: float = 0.0
    last_done: float = 0.0


class Meter:
    """Spend of one teacher in one build; plain arithmetic, so it is cheap as a Ray actor."""

    def __init__(self, cap_usd: float | None) -> None:
        self.cap = cap_usd
        self.spent = 0.0
        self.in_flight = 0.0
        self.stopped = False
        self.stages: dict[str, StageSpend] = {}

    def _stage(self, stage: str) -> StageSpend:
        return self.stages.setdefault(stage, StageSpend())

    def admit(self, stage: str, worst_usd: float) -> str:
        """"send" when a request that may cost `worst_usd` can go without passing the cap;
        "wait" when it may once requests in flight have settled; "refuse" when it never can;
        "stop" once the build was interrupted."""
        if self.stopped:
            return "stop"
        s = self._stage(stage)
        if self.cap is not None and self.spent + worst_usd > self.cap:
            s.refused += 1
            return "refuse"
        if self.cap is not None and self.spent + self.in_flight + worst_usd > self.cap:
            return "wait"
        self.in_flight += worst_usd
        s.sent += 1
        s.first_sent = s.first_sent or time.time()
        return "send"

    def settle(self, stage: str, worst_usd: float, cost_usd: float, prompt_tokens: int,
               completion_tokens: int, failed: bool, retries: int, cache_read_tokens: int = 0,
               cache_write_tokens: int = 0) -> None:
        """A sent request is over: what it cost replaces what it might have."""
        s = self._stage(stage)
        self.in_flight = max(0.0, self.in_flight - worst_usd)
        self.spent += cost_usd
        s.answered += not failed
        s.errors += failed
        s.retries += retries
        s.prompt_tokens += prompt_tokens
        s.completion_tokens += completion_tokens
        s.cache_read_tokens += cache_read_tokens
        s.cache_write_tokens += cache_write_tokens
        s.cost_usd += cost_usd
        s.last_done = time.time()

    def note_cached(self, stage: str, n: int) -> None:
        self._stage(stage).cached += n

    def note_queued(self, stage: str, n: int) -> None:
        self._stage(stage).queued += n

    def stop(self) -> None:
        """Ctrl-C: send nothing more (the requests in flight still settle)."""
        self.stopped = True

    def snapshot(self) -> dict[str, Any]:
        return {"cap_usd": self.cap, "spent_usd": self.spent,
                "stages": {name: asdict(s) for name, s in self.stages.items()}}


class MeterHandle:
    """The client's side: the build's meter actor under Ray, or a meter of its own otherwise."""

    def __init__(self, stage: str, meter: Any = None, cap_usd: float | None = None) -> None:
        self.stage = stage
        self.actor = meter if meter is not None and hasattr(meter, "admit") and hasattr(
            meter.admit, "remote") else None
        self.local = meter if self.actor is None and meter is not None else Meter(cap_usd)

    async def admit(self, worst_usd: float, wait: bool = True) -> str:
        """"send", or why not ("refuse": the cap, "stop": interrupted); waits while requests in
        flight might leave room, unless told not to (then "wait" says so)."""
        while True:
            if self.actor is not None:
                answer = await self.actor.admit.remote(self.stage, worst_usd)
            else:
                answer = self.local.admit(self.stage, worst_usd)
            if answer != "wait" or not wait:
                return answer
            await asyncio.sleep(0.05)

    def settle(self, *args: Any) -> None:
        if self.actor is not None:  # not awaited: the order of settles does not matter
            self.actor.settle.remote(self.stage, *args)
        else:
            self.local.settle(self.stage, *args)

    def note_cached(self, n: int) -> None:
        self._note("note_cached", n)

    def note_queued(self, n: int) -> None:
        self._note("note_queued", n)

    def _note(self, what: str, n: int) -> None:
        if not n:
            return
        if self.actor is not None:
            getattr(self.actor, what).remote(self.stage, n)
        else:
            getattr(self.local, what)(self.stage, n)
