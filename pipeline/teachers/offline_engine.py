"""`vllm_engines`: vLLM's async engine inside Ray actors: no server, no HTTP.

Each actor holds one engine (`teacher.tensor_parallel_size` GPUs wide, or CPU where
`teacher.num_gpus` is 0) and answers one chat completion per call, as a vLLM server answers
it: the model's chat template, the request's sampling settings, vLLM's own finish reason and
token counts, in the JSON the API returns. So the client asks engines as it asks a server (the
same concurrency, meters, cache and chains), the engine's batch is fed request by request
across passes instead of pass by pass, and the local server and the engines share answers:
same model, same messages and sampling settings, same cache key.
"""

from __future__ import annotations

import logging
import os
from itertools import count
from typing import Any

import ray

from pipeline.engine.config import expand
from pipeline.teachers.cpu_dtype import serving_dtype
from pipeline.teachers.model_hosts import ModelHosts

log = logging.getLogger("rubricforge")


def model_source(teacher_cfg: Any) -> str:
    """The checkpoint the engines load: `teacher.checkpoint` (a Hub id or a path every node
    reaches), else the embedded model, converted on this machine."""
    if teacher_cfg.checkpoint:
        return teacher_cfg.checkpoint
    from pipeline.teachers.local_model import ensure_checkpoint

    return str(ensure_checkpoint(expand(teacher_cfg.model_dir)))


def model_settings(teacher_cfg: Any, source: str) -> dict[str, Any]:
    """How a teacher setting loads its model, in vLLM's engine arguments: the same for the
    offline engines and a `vllm_server` (its command line is these, as flags). Worked out on
    the node that runs the model (its CPU decides `dtype: auto`)."""
    t = teacher_cfg
    return {"model": source, "served_model_name": t.model, "max_model_len": t.max_model_len,
            "tensor_parallel_size": t.tensor_parallel_size, "dtype": serving_dtype(t),
            # CUDA graphs pay off on GPUs; on CPU, eager mode starts in about a minute on
            # 2 cores instead of three
            "enforce_eager": t.num_gpus == 0}


def engine_args(teacher_cfg: Any, source: str) -> dict[str, Any]:
    """The offline engines' arguments: the model's settings, without vLLM's periodic stats
    lines (the build's progress display has the rates; a server keeps them, in its log)."""
    return {**model_settings(teacher_cfg, source), "disable_log_stats": True}


def as_flags(settings: dict[str, Any]) -> list[str]:
    """Engine arguments as `vllm serve` flags: `--max-model-len 4096`, `--enforce-eager`."""
    flags: list[str] = []
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is not False and value is not None:
            flags += [flag, str(value)]
    return flags


def sampling_of(body: dict[str, Any]) -> dict[str, Any]:
    """vLLM's `SamplingParams` of a chat-completions body, as the server maps them (guided
    decoding as the dict of its `StructuredOutputsParams`)."""
    params: dict[str, Any] = {"max_tokens": body["max_completion_tokens"]}
    for name in ("temperature", "top_p", "seed", "structured_outputs"):
        if name in body:
            params[name] = body[name]
    return params


class _EngineHost:
    """One engine on whichever node Ray placed this actor (an async actor: every request in
    flight is one coroutine, all fed to the one engine)."""

    def __init__(self, teacher_cfg: Any, source: str) -> None:
        self.args = engine_args(teacher_cfg, source)
        self.model = self.args["served_model_name"]
        self.ids = count()

    async def start(self) -> Any:
        """Load the model; returns this actor's handle, which the client's endpoints hold."""
        # Ray sets OMP_NUM_THREADS=1 in its workers; the engine (a process of its own, started
        # here) sizes its own thread pools, as a server does
        os.environ.pop("OMP_NUM_THREADS", None)
        import vllm
        from transformers import AutoTokenizer

        self.engine = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**self.args))
        self.tokenizer = AutoTokenizer.from_pretrained(self.args["model"])
        return ray.get_runtime_context().current_actor

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """One chat completion, as `POST /v1/chat/completions` of a vLLM server returns it."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import StructuredOutputsParams

        # the server renders the template as text and encodes it without special tokens
        text = self.tokenizer.apply_chat_template(body["messages"], tokenize=False,
                                                  add_generation_prompt=True)
        prompt = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        params = sampling_of(body)
        if "structured_outputs" in params:
            params["structured_outputs"] = StructuredOutputsParams(**params["structured_outputs"])
        final = None
        async for out in self.engine.generate(TokensPrompt(prompt_token_ids=prompt),
                                              SamplingParams(**params),
                                              request_id=f"rf-{next(self.ids)}"):
            final = out
        assert final is not None and final.finished
        answer = final.outputs[0]
        return {"object": "chat.completion", "model": self.model,
                "choices": [{"index": 0, "finish_reason": answer.finish_reason,
                             "message": {"role": "assistant", "content": answer.text}}],
                "usage": {"prompt_tokens": len(prompt),
                          "completion_tokens": len(answer.token_ids),
                          "total_tokens": len(prompt) + len(answer.token_ids)}}

    def stop(self) -> None:
        self.engine.shutdown()


def offline_engines(teacher_cfg: Any) -> ModelHosts:
    """`teacher.replicas` engines; entered, it returns their actors, ready to answer."""
    t = teacher_cfg
    source = model_source(t)
    log.warning("starting %d offline vLLM engine(s) for %s (%s); on CPU about a minute",
                t.replicas, t.model, source)
    return ModelHosts(t, _EngineHost, [(t, source)] * t.replicas,
                      "the offline vLLM engines", "the build's log",
                      env={"VLLM_CPU_KVCACHE_SPACE": str(t.kv_cache_gib),
                           "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"})
