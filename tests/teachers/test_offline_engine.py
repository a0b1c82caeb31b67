"""The `vllm` backend's glue, without an engine: what goes into Ray Data LLM, what comes out
into the cache, and how the stage reads it. The engines themselves run in tests/test_e2e.py."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from pipeline.engine.batches import request_table as table_of
from pipeline.engine.config import ConfigError
from pipeline.plan import make_plan
from pipeline.rules.verdict import trace_regex
from pipeline.settings import load_config
from pipeline.teachers.cache import ResponseCache, request_key
from pipeline.teachers.client import TeacherClient
from pipeline.teachers.offline_engine import from_engine, processor_config, store, to_engine
from pipeline.teachers.requests import request_for, uncached
from pipeline.teachers.stage import TeacherStage

from fake_openai import FakeOpenAI, completion

MSGS = [[{"role": "user", "content": f"question {i}"}] for i in range(3)]


@pytest.fixture
def teacher(tmp_path):
    return load_config(["teacher=vllm_engines", f"teacher.cache_dir={tmp_path}/cache",
                        "teacher.max_tokens=50", "teacher.max_model_len=200"]).teacher


def engine_row(key: str, text: str, prompt: int, completion: int, error: str = "") -> dict:
    """A row as Ray Data LLM's engine and detokenize stages leave it."""
    return {"key": key, "generated_text": text, "num_input_tokens": prompt,
            "num_generated_tokens": completion, "time_taken_llm": 1.23456,
            "__inference_error__": error}


def test_requests_reach_the_engine_with_every_sampling_setting(teacher):
    requests = uncached(teacher, MSGS)
    rows = table_of(requests).to_pylist()
    assert [r["key"] for r in rows] == list(requests)
    sent = to_engine(rows[0])
    assert sent["key"] == rows[0]["key"] and sent["messages"] == MSGS[0]
    assert sent["sampling_params"] == {"max_tokens": 50, "temperature": 0.0, "seed": 0,
                                       "structured_outputs": {"regex": trace_regex()}}


@pytest.mark.parametrize("prompt, completion, reason", [
    (20, 10, "stop"), (20, 50, "length"), (190, 10, "length")])
def test_an_answer_that_used_every_token_allowed_was_cut_off(prompt, completion, reason):
    record = from_engine(50, 200, engine_row("k", "text", prompt, completion))
    assert record["finish_reason"] == reason


def test_engine_answers_are_cached_as_an_api_answer_is(teacher, tmp_path):
    """Same fields in the cache, so the stage, the manifest and the shards cannot tell the
    backends apart. The local server and the engines share keys for the same weights; an API
    that calls its model by the same name does not (the name says nothing of the weights)."""
    api = load_config(["teacher=openai", "teacher.model=SmolLM2-135M-Instruct",
                       f"teacher.cache_dir={tmp_path}/api", "teacher.max_tokens=50",
                       "teacher.temperature=0.0", "teacher.seed=0",
                       "teacher.guided_format=true"]).teacher
    with FakeOpenAI(lambda body, n: completion("an answer")) as server:
        TeacherClient(api, server.base_url).complete_all(MSGS[:1])
    local = load_config(["teacher.max_tokens=50", "teacher.temperature=0.0", "teacher.seed=0",
                         "teacher.guided_format=true"]).teacher
    key = request_key(request_for(teacher, MSGS[0]))
    assert key == request_key(request_for(local, MSGS[0]))
    api_key = request_key(request_for(api, MSGS[0]))
    assert api_key != key

    row = from_engine(50, 200, engine_row(key, "an answer", 11, 7))
    store(teacher, "teacher", None, pa.Table.from_pylist([row | {"__inference_error__": ""}]))
    from_api = ResponseCache(api.cache_dir).get(api_key)
    from_vllm = ResponseCache(teacher.cache_dir).get(key)
    assert set(from_vllm) == set(from_api)
    assert {k: type(v) for k, v in from_vllm.items()} == {k: type(v) for k, v in from_api.items()}
    assert from_vllm["content"] == "an answer" and from_vllm["latency_s"] == 1.235
    assert from_vllm["model"] == request_for(teacher, MSGS[0])["checkpoint"]


def test_the_stage_reads_engine_answers_errors_and_misses(teacher):
    keys = list(uncached(teacher, MSGS))
    batch = [from_engine(50, 200, engine_row(keys[0], "answered", 11, 7)) | {"__inference_error__": ""},
             engine_row(keys[1], "", 0, 0, "ValueError: prompt too long\ntraceback...")]
    outcome = store(teacher, "teacher", None, pa.Table.from_pylist(batch)).to_pylist()
    assert outcome == [{"key": keys[0], "error": None},
                       {"key": keys[1], "error": "vLLM engine: ValueError: prompt too long"}]
    offline = {r["key"]: r["error"] for r in outcome}

    first = TeacherClient(teacher, None, answered=offline).complete_all(MSGS)
    assert first[0].content == "answered" and not first[0].cached and first[0].error is None
    assert first[1].error == "vLLM engine: ValueError: prompt too long"
    assert first[2].error.startswith("no answer from the vLLM engines")
    # a later build (nothing given to the engines) reads the answer as cached
    again = TeacherClient(teacher, None).complete_all(MSGS[:1])
    assert again[0].cached and again[0].content == "answered"
    assert list(uncached(teacher, MSGS)) == keys[1:]


def test_engines_take_cpus_or_gpus_as_configured(teacher):
    cpu = processor_config(teacher, "/models/m")
    assert [(b["CPU"], b.get("GPU", 0)) for b in cpu.placement_group_config["bundles"]] == [(1, 0)]
    assert cpu.engine_kwargs["enforce_eager"] and cpu.concurrency == 1
    assert cpu.batch_size * 4 >= teacher.concurrency
    gpu_cfg = load_config(["teacher=vllm_engines", "teacher.num_gpus=4", "teacher.tensor_parallel_size=4",
                           "teacher.replicas=2"]).teacher
    gpu = processor_config(gpu_cfg, "org/model")
    assert gpu.placement_group_config is None and gpu.concurrency == 2
    assert gpu.engine_kwargs["tensor_parallel_size"] == 4 and not gpu.engine_kwargs["enforce_eager"]


@pytest.mark.parametrize("overrides, message", [
    (["teacher=vllm_engines", "++teacher.max_cost_usd=5", "teacher.price_input_per_mtok=1"],
     "teacher.max_cost_usd does not apply to teacher=vllm_engines"),
    (["teacher2=vllm_engines", "++teacher2.rpm=600"], "teacher2.rpm does not apply to teacher2=vllm_engines"),
    (["teacher=vllm_engines", "teacher.num_gpus=1", "teacher.tensor_parallel_size=2"],
     "teacher.num_gpus=1 with teacher=vllm_engines: set it to 0 (CPU engines) or to "
     "teacher.tensor_parallel_size"),
])
def test_settings_an_offline_engine_cannot_honour_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_plan(load_config(overrides))


def test_the_vllm_backend_plans_for_both_passes():
    plan = make_plan(load_config(["teacher=vllm_engines", "teacher2=vllm_engines"]))
    assert {s.teacher_config().backend for s in plan.stages
            if isinstance(s, TeacherStage)} == {"vllm_engines"}
