"""The `vllm_engines` backend's glue, without an engine: what an engine is asked, how it is
configured, how its answers are keyed and read. The engines themselves answer pass 2 of the
sample build (tests/test_e2e.py), in chains with the local server's pass 1."""

from __future__ import annotations

import re

import pytest

from pipeline.engine.config import ConfigError
from pipeline.plan import make_plan
from pipeline.rules.verdict import trace_regex
from pipeline.settings import load_config
from pipeline.teachers.cache import request_key
from pipeline.teachers.client import TeacherClient
from pipeline.teachers.local_server import LocalTeacherServer
from pipeline.teachers.offline_engine import engine_args, sampling_of
from pipeline.teachers.requests import KEY_ONLY, request_for
from pipeline.teachers.stage import TeacherStage

MSGS = [[{"role": "user", "content": f"question {i}"}] for i in range(3)]


@pytest.fixture
def teacher(tmp_path):
    return load_config(["teacher=vllm_engines", f"teacher.cache_dir={tmp_path}/cache",
                        "teacher.max_tokens=50", "teacher.max_model_len=200"]).teacher


def test_requests_reach_the_engine_with_every_sampling_setting(teacher):
    """What the client posts (the request without its key-only fields) is what the engine
    samples with, as a vLLM server maps it."""
    body = {k: v for k, v in request_for(teacher, MSGS[0]).items() if k not in KEY_ONLY}
    assert body["messages"] == MSGS[0]
    assert sampling_of(body) == {"max_tokens": 50, "temperature": 0.0, "seed": 0,
                                 "structured_outputs": {"regex": trace_regex()}}
    top_p = load_config(["teacher=vllm_engines", "teacher.top_p=0.9",
                         "teacher.guided_format=false"]).teacher
    assert sampling_of(request_for(top_p, MSGS[0]))["top_p"] == 0.9
    assert "structured_outputs" not in sampling_of(request_for(top_p, MSGS[0]))


def test_engines_and_the_local_server_share_answers_an_api_does_not(teacher, tmp_path):
    """The local server and the engines run the same weights under the same settings: one
    cache key. An API that calls its model by the same name does not share it (the name says
    nothing of the weights)."""
    api = load_config(["teacher=openai", "teacher.model=SmolLM2-135M-Instruct",
                       f"teacher.cache_dir={tmp_path}/api", "teacher.max_tokens=50",
                       "teacher.temperature=0.0", "teacher.seed=0",
                       "teacher.guided_format=true"]).teacher
    local = load_config(["teacher.max_tokens=50", "teacher.temperature=0.0", "teacher.seed=0",
                         "teacher.guided_format=true"]).teacher
    key = request_key(request_for(teacher, MSGS[0]))
    assert key == request_key(request_for(local, MSGS[0]))
    assert request_key(request_for(api, MSGS[0])) != key


def test_a_stage_whose_engines_were_never_started_asks_nothing(teacher):
    """When the cache answered every request a stage had as it began, no engine was started
    (no endpoints): a request it still meets is a row error that says so, never a crash."""
    results = TeacherClient(teacher, []).complete_all(MSGS[:1])
    assert results[0].content is None and results[0].error.startswith("not asked")


def test_engines_take_cpus_or_gpus_as_configured(teacher):
    cpu = engine_args(teacher, "/models/m")
    assert cpu["enforce_eager"] and cpu["tensor_parallel_size"] == 1
    assert (cpu["model"], cpu["served_model_name"]) == ("/models/m", teacher.model)
    assert cpu["max_model_len"] == 200
    gpu_cfg = load_config(["teacher=vllm_engines", "teacher.num_gpus=4",
                           "teacher.tensor_parallel_size=4", "teacher.replicas=2"]).teacher
    gpu = engine_args(gpu_cfg, "org/model")
    assert gpu["tensor_parallel_size"] == 4 and not gpu["enforce_eager"]


@pytest.mark.parametrize("overrides, message", [
    (["teacher=vllm_engines", "++teacher.max_cost_usd=5", "teacher.price_input_per_mtok=1"],
     "teacher.max_cost_usd does not apply to teacher=vllm_engines"),
    (["teacher2=vllm_engines", "++teacher2.rpm=600"], "teacher2.rpm does not apply to teacher2=vllm_engines"),
    (["teacher2=vllm_engines", "teacher2.temperature=0.8", "teacher2.seed=7"],
     "teacher2.seed=7 with teacher2.temperature=0.8 on CPU: vLLM's CPU sampler fails"),
    (["teacher=vllm_server", "teacher.temperature=0.5"],
     "teacher.seed=0 with teacher.temperature=0.5 on CPU"),
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


def test_stages_share_engines_only_where_they_would_start_the_same_ones(tmp_path):
    """Pass 1 and pass 2 on the same model share one set of engines (sampling settings travel
    with each request); a setting that changes what is started gets its own; nothing starts
    while every request is cached."""
    import contextlib

    from pipeline.teachers.backends.vllm_engines import hosted_as
    from pipeline.teachers.runtime import RunEndpoints

    both = load_config(["teacher=vllm_engines", "teacher2=vllm_engines"])
    assert both.teacher.max_tokens != 320 and hosted_as(both.teacher) == hosted_as(
        load_config(["teacher=vllm_engines", "teacher.max_tokens=320"]).teacher)
    assert hosted_as(both.teacher) == hosted_as(both.teacher2)
    longer = load_config(["teacher=vllm_engines", "teacher.max_model_len=8192"]).teacher
    server = load_config([]).teacher
    assert len({hosted_as(both.teacher), hosted_as(longer), hosted_as(server)}) == 3

    started: list[str] = []
    with contextlib.ExitStack() as stack:
        run = RunEndpoints(stack, tmp_path / "teacher.log", on_cluster=False)

        def start(name: str):
            return lambda: started.append(name) or [name]

        assert run.start(hosted_as(both.teacher), 0, start("a")) == []
        assert run.start(hosted_as(both.teacher), 5, start("a")) == ["a"]
        assert run.start(hosted_as(both.teacher2), 3, start("b")) == ["a"]
        assert run.start(hosted_as(longer), 0, start("c")) == []
    assert started == ["a"]


@pytest.mark.parametrize("overrides", [
    [], ["teacher.num_gpus=2", "teacher.tensor_parallel_size=2", "teacher.dtype=bfloat16"]])
def test_a_server_loads_the_model_as_the_engines_do(overrides, tmp_path):
    """A `vllm_server`'s command line is the engines' settings as flags, so the two ways of
    running a model cannot drift apart: eager mode on CPU only (CUDA graphs on GPUs)."""
    cfg = load_config(["teacher=vllm_server", *overrides]).teacher
    cmd = LocalTeacherServer(cfg, tmp_path / "log").command("/models/m", 8000)
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    given: dict[str, object] = {}
    for i, word in enumerate(cmd[3:], start=3):
        if word.startswith("--"):
            value = cmd[i + 1] if i + 1 < len(cmd) and not cmd[i + 1].startswith("--") else True
            given[word[2:].replace("-", "_")] = value
    settings = {k: v if v is True else str(v) for k, v in engine_args(cfg, "/models/m").items()
                if k != "disable_log_stats" and v is not False}
    assert given == {"host": "127.0.0.1", "port": "8000", **settings}
    assert ("enforce_eager" in given) == (cfg.num_gpus == 0)
