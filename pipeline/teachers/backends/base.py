"""What every teacher backend declares and does, and the settings every teacher has."""

from __future__ import annotations

from typing import Any, ClassVar

from pipeline.engine.config import ConfigError
from pipeline.engine.stage import Resources
from pipeline.teachers.teacher_config import TeacherConfig
from pipeline.teachers.transport import Endpoint, HTTPEndpoint

__all__ = ["Backend", "TeacherConfig"]


class Backend:
    """A way of asking a teacher. Subclasses set the class attributes and, where they differ
    from the defaults, override the methods."""

    name: ClassVar[str]
    # The settings this backend takes (`TeacherConfig` and the backend's own), and what the
    # rest of the build needs to know of it (its price factor, whether it serves a checkpoint,
    # can be chained, answers one job per pass): pipeline/teachers/teacher_config.py.
    Config: ClassVar[type[TeacherConfig]] = TeacherConfig
    # Earlier names of this backend, still accepted with a one-line notice.
    old_names: ClassVar[tuple[str, ...]] = ()

    def check(self, key: str, t: Any, asked: bool) -> None:
        """Settings and prerequisites this backend needs, before any work (raise
        `ConfigError`); `asked`: a stage of this build asks this teacher."""
        if asked and self.Config.serves_checkpoint and not t.checkpoint:
            from pipeline.teachers.local_model import LocalModelError, gguf_path

            try:
                gguf_path()
            except LocalModelError as exc:
                raise ConfigError(f"{key}={t.backend}: {exc}") from None

    def check_secret(self, key: str, t: Any) -> None:
        """What sending needs beyond the settings (an API key), when a build will send requests
        (an estimate sends none): raise `ConfigError`."""

    def endpoints(self, t: Any, pending: int, run: Any) -> list[Endpoint]:
        """Where a stage with `pending` uncached requests sends them (pipeline/teachers/
        transport.py): the provider's default URL unless the backend says otherwise. What a
        backend starts for them (servers, engines) it starts through `run.start`
        (pipeline/teachers/runtime.py `RunEndpoints`): once per key it gives, and only when
        something is pending."""
        return [HTTPEndpoint(None)]

    def answer(self, requests: Any, n: int, t: Any, stage: str, meter: Any,
               endpoints: list[Endpoint], resources: Resources) -> dict[str, str | None]:
        """Answer the `n` requests (a Ray Dataset of `request_table` rows) into the cache;
        returns key -> error (None: answered)."""
        from pipeline.teachers.answering import answer_with_actors

        return answer_with_actors(requests, t, stage, meter, endpoints,
                                  max(1, resources.actors or 1),
                                  resources.num_cpus)



class AnswersInJobs:
    """What a backend whose provider answers a pass in batch jobs does (mixed in before its
    API's backend): the pass goes in jobs from the driver (pipeline/teachers/batch_jobs.py),
    and its stage's client gets no endpoint, so a request the jobs did not answer is the row's
    error, never a synchronous request at the full price."""

    # the provider's jobs (a `BatchJobs` subclass)
    jobs: ClassVar[type]

    def endpoints(self, t: Any, pending: int, run: Any) -> list[Endpoint]:
        return []

    def answer(self, requests: Any, n: int, t: Any, stage: str, meter: Any,
               endpoints: list[Endpoint], resources: Resources) -> dict[str, str | None]:
        from pipeline.teachers.batch_jobs import answer_in_jobs, pending_requests

        return answer_in_jobs(pending_requests(requests), t, stage, meter, self.jobs)
