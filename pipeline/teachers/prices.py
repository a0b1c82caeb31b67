"""What a teacher's tokens cost: its own prices where the user set them, else the dated table of
well-known models (conf/prices.yaml), with cached prompt tokens at the provider's cache rates.

A provider bills a prompt in up to three parts: tokens read from its prompt cache (Anthropic
about a tenth of the input price, OpenAI a half or less), tokens written to it (Anthropic 1.25x
the input price; OpenAI nothing extra) and the rest at the input price. Usage reports say how
many of each; `price_usd` prices them, times the backend's factor (a Batch API bills half).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from omegaconf import OmegaConf

from pipeline.engine.config import CONF_DIR
from pipeline.teachers.teacher_config import kind_of

TABLE = "conf/prices.yaml"


@dataclass(frozen=True)
class Rates:
    """USD per million tokens (None: unknown), and where they come from."""

    input: float | None
    output: float | None
    cache_read: float | None
    cache_write: float | None
    source: str = ""
    # the shortest prefix the provider caches (None: not known)
    min_cached_prefix: int | None = None

    @property
    def known(self) -> bool:
        return self.input is not None and self.output is not None


@cache
def table() -> tuple[str, dict[str, dict[str, Any]]]:
    """The date the shipped table was checked, and its entries by model name."""
    data = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "prices.yaml"))
    assert isinstance(data, dict)
    return str(data["checked"]), data["models"]


def listed(model: str) -> dict[str, Any] | None:
    """The table's entry for a model id: its name, or its name and a dated snapshot."""
    _, models = table()
    base = re.sub(r"-(\d{8}|\d{4}-\d{2}-\d{2}|latest)$", "", model)
    return models.get(model) or models.get(base)


def rates(t: Any) -> Rates:
    """The rates of a teacher setting."""
    kind = kind_of(t)
    return _rates(t.model, t.price_input_per_mtok, t.price_output_per_mtok,
                  t.price_cache_read_per_mtok, t.price_cache_write_per_mtok,
                  kind.cache_read_factor, kind.cache_write_factor)


@lru_cache(maxsize=64)
def _rates(model: str, price_in: float | None, price_out: float | None, read: float | None,
           write: float | None, read_factor: float, write_factor: float) -> Rates:
    entry = listed(model)
    prefix = entry.get("min_cached_prefix") if entry else None
    if price_in is not None or price_out is not None or entry is None:
        # the user's prices; cache rates theirs, else the provider's factors of their input
        def derived(own: float | None, factor: float) -> float | None:
            return own if own is not None else (None if price_in is None else factor * price_in)

        return Rates(price_in, price_out, derived(read, read_factor),
                     derived(write, write_factor), "teacher settings", prefix)
    checked, _ = table()
    return Rates(entry["input"], entry["output"],
                 read if read is not None else entry["cache_read"],
                 write if write is not None else entry["cache_write"],
                 f"{TABLE}, checked {checked}", prefix)


def price_usd(t: Any, prompt_tokens: int, completion_tokens: int, cache_read: int = 0,
              cache_write: int = 0) -> float:
    """USD for one answer's tokens (`prompt_tokens` counts every prompt token, the cached ones
    too), times the backend's factor (the Batch APIs bill half). Unknown prices count as 0."""
    r = rates(t)
    fresh = max(0, prompt_tokens - cache_read - cache_write)
    listed_usd = (fresh * (r.input or 0.0) + cache_read * (r.cache_read or 0.0)
                  + cache_write * (r.cache_write or 0.0)
                  + completion_tokens * (r.output or 0.0)) / 1e6
    return kind_of(t).price_factor * listed_usd


def record_cost(t: Any, record: dict[str, Any]) -> float:
    """USD for a cached answer record (pipeline/teachers/cache.py), from the usage it reports."""
    return price_usd(t, record["prompt_tokens"], record["completion_tokens"],
                     record.get("cache_read_tokens", 0), record.get("cache_write_tokens", 0))
