"""Ray actors that each host one copy of a self-hosted teacher (a vLLM server, a vLLM engine):
started together and awaited with a deadline, then stopped and killed when the run ends or a
start fails, whatever happened. Each actor reserves `teacher.num_gpus`, so on a cluster the
copies land on GPU nodes while CPU stages run elsewhere."""

from __future__ import annotations

import contextlib
from typing import Any

import ray

from pipeline.engine.config import RunError


class ModelHostError(RunError):
    pass


class ModelHosts:
    """Context manager: one `host` actor (a class with `start()` and `stop()`) per argument
    tuple in `args`; returns what each `start()` returned. `what` names them in errors, `see`
    says where their log is."""

    def __init__(self, teacher_cfg: Any, host: type, args: list[tuple[Any, ...]], what: str,
                 see: str, env: dict[str, str] | None = None) -> None:
        self.cfg, self.args, self.what, self.see = teacher_cfg, args, what, see
        gpus = {"num_gpus": teacher_cfg.num_gpus} if teacher_cfg.num_gpus else {}
        runtime_env = {"runtime_env": {"env_vars": env}} if env else {}
        self.host = ray.remote(host).options(num_cpus=0, max_restarts=0, **gpus, **runtime_env)
        self.actors: list[Any] = []

    def __enter__(self) -> list[Any]:
        t = self.cfg
        self.actors = [self.host.remote(*a) for a in self.args]
        try:
            return ray.get([a.start.remote() for a in self.actors],
                           timeout=t.startup_timeout_s + 120)
        except ray.exceptions.GetTimeoutError:
            self.__exit__()
            raise ModelHostError(
                f"{self.what} did not start within {t.startup_timeout_s:.0f}s "
                f"(teacher.startup_timeout_s): is there a node with {t.num_gpus:g} free GPU(s) "
                f"(teacher.num_gpus) for each of {t.replicas} replica(s)? See {self.see}"
            ) from None
        except ray.exceptions.RayTaskError as exc:
            self.__exit__()
            raise exc.cause if isinstance(exc.cause, Exception) else exc from None
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            ray.get([a.stop.remote() for a in self.actors], timeout=60)
        for a in self.actors:
            ray.kill(a)
        self.actors = []
