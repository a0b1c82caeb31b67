"""The `vllm` backend: offline vLLM engines on Ray workers, through a Ray Data LLM processor.

Before a stage that asks this teacher runs, the requests the cache cannot answer go through
`ray.data.llm` (chat template, tokenize, engine, detokenize): `teacher.replicas` engines
(data parallel), each `teacher.tensor_parallel_size` GPUs wide, or one CPU each where
`teacher.num_gpus` is 0. Each answer is written to the response cache as its batch leaves the
engine, so the stage then reads answers exactly as it reads an API's, a build killed mid-run
loses only the batches inside the engines, and the local server and the offline engine share
answers: same model, same messages and sampling settings, same cache key.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

import pyarrow as pa

from pipeline.engine.config import expand
from pipeline.teachers.cache import RECORD_FIELDS, ResponseCache, answer_record
from pipeline.teachers.client import Answered
from pipeline.teachers.model_identity import checkpoint_identity
from pipeline.teachers.spend import MeterHandle, price_usd

log = logging.getLogger("rubricforge")


# Templating and (de)tokenizing are light next to the engine: they must not take whole CPUs
# from it, or on a small machine the engine never gets scheduled.
LIGHT_CPUS = 0.1
# Batches in each engine at once (Ray Data LLM wants at least 4 to keep vLLM busy), so one
# batch's tail overlaps the next ones; together they hold `teacher.concurrency` requests.
BATCHES_IN_ENGINE = 4


def model_source(teacher_cfg: Any) -> str:
    """The checkpoint the engines load: `teacher.checkpoint` (a Hub id or a path every node
    reaches), else the embedded model, converted on this machine."""
    if teacher_cfg.checkpoint:
        return teacher_cfg.checkpoint
    from pipeline.teachers.local_model import ensure_checkpoint

    return str(ensure_checkpoint(expand(teacher_cfg.model_dir)))


def processor_config(teacher_cfg: Any, source: str) -> Any:
    from ray.data.llm import vLLMEngineProcessorConfig

    t = teacher_cfg
    on_gpu = t.num_gpus > 0
    return vLLMEngineProcessorConfig(
        model_source=source,
        engine_kwargs={"max_model_len": t.max_model_len,
                       "tensor_parallel_size": t.tensor_parallel_size,
                       # CUDA graphs pay off on GPUs; on CPU eager mode starts much sooner
                       "enforce_eager": not on_gpu},
        # GPU engines take Ray Data LLM's default: one GPU bundle per tensor-parallel rank.
        placement_group_config=None if on_gpu else {
            "bundles": [{"CPU": 1}] * t.tensor_parallel_size},
        concurrency=t.replicas,
        batch_size=max(1, -(-t.concurrency // BATCHES_IN_ENGINE)),
        max_concurrent_batches=BATCHES_IN_ENGINE,
        should_continue_on_error=True,
        # Ray's Prometheus metrics need an export port the build does not open
        log_engine_metrics=False,
        # one actor of each per engine
        **{f"{name}_stage": {"num_cpus": LIGHT_CPUS, "concurrency": t.replicas}
           for name in ("chat_template", "tokenize", "detokenize")},
        runtime_env={"env_vars": {"VLLM_CPU_KVCACHE_SPACE": str(t.kv_cache_gib),
                                  "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}},
    )


def to_engine(row: dict[str, Any]) -> dict[str, Any]:
    """A cached request as the engine stage wants it: messages and vLLM sampling params."""
    req = json.loads(row["request"])
    params: dict[str, Any] = {"max_tokens": req["max_completion_tokens"]}
    for name in ("temperature", "top_p", "seed", "structured_outputs"):
        if name in req:
            params[name] = req[name]
    return {"key": row["key"], "messages": req["messages"], "sampling_params": params}


def from_engine(max_tokens: int, max_model_len: int, row: dict[str, Any]) -> dict[str, Any]:
    """The engine's output as the cache record an API answer makes. Ray Data LLM does not pass
    vLLM's finish reason on: an answer that used every token it was allowed was cut off."""
    prompt, completion = int(row["num_input_tokens"]), int(row["num_generated_tokens"])
    cut = completion >= max_tokens or prompt + completion >= max_model_len
    return {"key": row["key"], "content": row["generated_text"],
            "finish_reason": "length" if cut else "stop", "prompt_tokens": prompt,
            "completion_tokens": completion, "latency_s": round(float(row["time_taken_llm"]), 3)}


def store(teacher_cfg: Any, stage: str, meter: Any, batch: pa.Table) -> pa.Table:
    """Cache every answer of a batch as it leaves the engine; keep errors for the stage."""
    cache = ResponseCache(teacher_cfg.cache_dir)
    spend = MeterHandle(stage, meter)
    weights = checkpoint_identity(teacher_cfg)  # the model that answered, as the key names it
    keys, errors = [], []
    for row in batch.to_pylist():
        error = row.get("__inference_error__") or None
        if error is None:
            record = answer_record(*(row[name] for name in RECORD_FIELDS), model=weights)
            cache.put(row["key"], record)
            cost = price_usd(teacher_cfg, record["prompt_tokens"], record["completion_tokens"])
            spend.settle(0.0, cost, record["prompt_tokens"], record["completion_tokens"], False, 0)
        else:
            error = f"vLLM engine: {str(error).splitlines()[0][:300]}"
            spend.settle(0.0, 0.0, 0, 0, True, 0)
        keys.append(row["key"])
        errors.append(error)
    return pa.table({"key": pa.array(keys, pa.string()), "error": pa.array(errors, pa.string())})


def answer_offline(requests: Any, n: int, teacher_cfg: Any, stage: str, meter: Any
                   ) -> Answered:
    """Run the `n` uncached requests (a Ray Dataset of `request_table` rows) through vLLM
    engines on Ray workers; answers go to the cache, and what happened to each key comes back."""
    from ray.data.llm import build_processor

    t = teacher_cfg
    source = model_source(t)
    log.warning("%s: starting %d offline vLLM engine(s) for %s (%s); on CPU about a minute",
                stage, t.replicas, t.model, source)
    MeterHandle(stage, meter).begin()
    config = processor_config(t, source)
    processor = build_processor(
        config, preprocess=to_engine,
        postprocess=partial(from_engine, t.max_tokens, t.max_model_len),
        preprocess_map_kwargs={"num_cpus": LIGHT_CPUS},
        postprocess_map_kwargs={"num_cpus": LIGHT_CPUS})
    # A task takes a whole block: blocks of one batch keep every engine's batches full. Split
    # before the engines hold their CPUs: a split task needs a whole one.
    batches = requests.repartition(max(1, -(-n // config.batch_size))).materialize()
    done = processor(batches).map_batches(
        partial(store, t, stage, meter), batch_format="pyarrow",
        num_cpus=LIGHT_CPUS)
    answers = {row["key"]: row["error"] for row in done.take_all()}
    failed = sum(e is not None for e in answers.values())
    log.warning("%s: the vLLM engines answered %d requests, %d failed", stage,
                len(answers) - failed, failed)
    return answers
