"""What every teacher backend declares and does, and the settings every teacher has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.engine.config import ConfigError
from pipeline.engine.stage import Resources


@dataclass
class TeacherConfig:
    """Settings of every teacher; a backend's own `Config` adds its own."""

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
    # USD per million tokens, for `build --estimate` (null: unknown; the local model costs 0).
    price_input_per_mtok: float | None = None
    price_output_per_mtok: float | None = None
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


class Backend:
    """A way of asking a teacher. Subclasses set the class attributes and, where they differ
    from the defaults, override the methods."""

    name: ClassVar[str]
    # The settings this backend takes: `TeacherConfig` and the backend's own.
    Config: ClassVar[type] = TeacherConfig
    # Price per token is the configured price times this (the Batch API bills half).
    price_factor: ClassVar[float] = 1.0
    # Serves the embedded model (or `checkpoint`): its tokenizer counts prompt tokens.
    serves_checkpoint: ClassVar[bool] = False
    # Asks through the Batch API: one job per stage instead of a request stream.
    batch: ClassVar[bool] = False
    # Answers before the stage runs (offline engines): a stage never asks it anything.
    answers_ahead: ClassVar[bool] = False

    def check(self, key: str, t: Any, asked: bool) -> None:
        """Settings and prerequisites this backend needs, before any work (raise
        `ConfigError`); `asked`: a stage of this build asks this teacher."""
        if asked and self.serves_checkpoint and not t.checkpoint:
            from pipeline.teachers.local_model import LocalModelError, gguf_path

            try:
                gguf_path()
            except LocalModelError as exc:
                raise ConfigError(f"{key}={t.backend}: {exc}") from None

    def urls(self, t: Any, pending: int, endpoints: Any) -> list[str] | None:
        """The endpoints a stage with `pending` uncached requests sends them to (None: the
        provider's default, or none at all)."""
        return None

    def api_key(self, t: Any) -> str | None:
        """The secret key the client sends, if this backend has one (None: a server of our
        own, which takes any string)."""
        return None

    def answer(self, requests: Any, n: int, t: Any, stage: str, meter: Any,
               urls: list[str] | None, resources: Resources) -> dict[str, str | None]:
        """Answer the `n` requests (a Ray Dataset of `request_table` rows) into the cache;
        returns key -> error (None: answered)."""
        from pipeline.teachers.answering import answer_with_actors

        return answer_with_actors(requests, t, stage, meter, urls,
                                  1 if self.batch else max(1, resources.actors or 1),
                                  resources.num_cpus)


def check_backend(key: str, t: Any) -> Backend:
    """The backend of a teacher setting, or one line naming the known ones."""
    from pipeline.teachers.backends import registry

    known = registry()
    if t.backend not in known:
        raise ConfigError(f"{key}.backend='{t.backend}' is not one of "
                          f"{', '.join(sorted(known))}")
    return known[t.backend]()
