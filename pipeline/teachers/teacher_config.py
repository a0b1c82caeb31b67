"""The settings every teacher has, and what the rest of the build needs to know of a backend.

A teacher setting (`teacher`, `teacher2`) is typed as its backend's `Config` class (a subclass
of `TeacherConfig`), so the facts of the backend sit on that class: the client, the spend
meter and the cache keys read them from the setting itself (`kind_of`), and never look the
backend up. What a backend *does* (its checks, endpoints, how it answers) is its `Backend`
class in pipeline/teachers/backends/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from omegaconf import DictConfig, OmegaConf


@dataclass
class TeacherConfig:
    """Settings of every teacher; a backend's own `Config` adds its own."""

    # Price per token is the configured price times this (the Batch API bills half).
    price_factor: ClassVar[float] = 1.0
    # Prompt tokens read from (or written to) the provider's prompt cache cost the input price
    # times these, unless the teacher sets its own cache prices (pipeline/teachers/prices.py).
    cache_read_factor: ClassVar[float] = 1.0
    cache_write_factor: ClassVar[float] = 1.0
    # Serves the embedded model (or `checkpoint`): its tokenizer counts prompt tokens, and the
    # weights' identity is part of every cache key.
    serves_checkpoint: ClassVar[bool] = False
    # Answers request by request through the client (pipeline/teachers/client.py), so a
    # pair's requests to it can be chained across passes (pipeline/teachers/chains.py). A
    # backend that answers its own way is asked pass by pass.
    chainable: ClassVar[bool] = False

    backend: str = "???"
    model: str = "???"
    max_tokens: int = 1024
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    concurrency: int = 16
    # The provider's limits for this key, shared by every worker of the build (null: none).
    rpm: float | None = None
    tpm: float | None = None
    timeout_s: float = 300.0
    max_attempts: int = 3
    # Constrain decoding to the trace grammar (vLLM servers only): lets small models keep the
    # layout while they still choose the words and the verdict.
    guided_format: bool = False
    # USD per million tokens, for `build --estimate`, the cap and the spend report (null: the
    # model's entry in conf/prices.yaml, else unknown; the local model costs 0). Cache prices:
    # prompt tokens the provider read from, or wrote to, its prompt cache (null: the table's,
    # else the backend's share of the input price).
    price_input_per_mtok: float | None = None
    price_output_per_mtok: float | None = None
    price_cache_read_per_mtok: float | None = None
    price_cache_write_per_mtok: float | None = None
    # Stop sending new requests before this build's calls to this teacher pass this many USD
    # (null: no cap); needs both prices. Rows not asked are rejected as `cost_cap`.
    max_cost_usd: float | None = None
    # Hugging Face tokenizer (Hub id or directory) that counts prompt tokens for the TPM budget,
    # the cost cap and `--estimate`; null: characters / 4 (the local teacher uses its own).
    tokenizer: str | None = None
    cache_dir: str = "~/.cache/rubricforge/teacher"
    # Where the embedded model is kept (converted once); its tokenizer is also what
    # token_lengths counts with when no other is named.
    model_dir: str = "~/.cache/rubricforge/models"

    @classmethod
    def on_these_cpus(cls, t: Any) -> tuple[Any, ...] | None:
        """What this teacher runs on the build's own CPUs (a model instance), or None (an
        API, GPUs): two such instances at once share the cores, each slower than alone."""
        return None

    @classmethod
    def request_extras(cls, t: Any) -> dict[str, Any]:
        """Settings of this backend that change the answer, added to every request (and so to
        its cache key)."""
        return {}

    @classmethod
    def secret_of(cls, t: Any) -> str | None:
        """The secret key the client sends for setting `t` (None: a server of our own, which
        takes any string)."""
        return None


def kind_of(t: Any) -> type[TeacherConfig]:
    """The config class of a teacher setting (a typed DictConfig or the plain object)."""
    kind = OmegaConf.get_type(t) if isinstance(t, DictConfig) else type(t)
    if not (isinstance(kind, type) and issubclass(kind, TeacherConfig)):
        raise TypeError(f"not a teacher setting: {kind}")
    return kind


def secret(t: Any) -> str | None:
    return kind_of(t).secret_of(t)
