"""What every teacher backend declares and does."""

from __future__ import annotations

from typing import Any, ClassVar

from pipeline.config import ConfigError
from pipeline.stage import Resources


class Backend:
    """A way of asking a teacher. Subclasses set the class attributes and, where they differ
    from an OpenAI-compatible API, override the methods."""

    name: ClassVar[str]
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
            from pipeline.local_model import LocalModelError, gguf_path

            try:
                gguf_path()
            except LocalModelError as exc:
                raise ConfigError(f"config error: {key}={t.backend}: {exc}") from None

    def urls(self, t: Any, pending: int, endpoints: Any) -> list[str] | None:
        """The endpoints a stage with `pending` uncached requests sends them to."""
        return [t.base_url] if t.base_url else None

    def answer(self, requests: Any, n: int, t: Any, stage: str, meter: Any,
               urls: list[str] | None, resources: Resources) -> dict[str, str | None]:
        """Answer the `n` requests (a Ray Dataset of `request_table` rows) into the cache;
        returns key -> error (None: answered)."""
        from pipeline.answering import answer_with_actors

        return answer_with_actors(requests, t, stage, meter, urls,
                                  1 if self.batch else max(1, resources.actors or 1),
                                  resources.num_cpus)


def check_backend(key: str, t: Any) -> Backend:
    """The backend of a teacher setting, or one line naming the known ones."""
    from pipeline.backends import registry

    known = registry()
    if t.backend not in known:
        raise ConfigError(f"config error: {key}.backend='{t.backend}' is not one of "
                          f"{', '.join(sorted(known))}")
    return known[t.backend]()
