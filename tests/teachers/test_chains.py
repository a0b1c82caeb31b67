"""Chains: which stages a chain walks, and a build whose later passes are asked in chains writes
the same bytes, asking the same requests once each, as the same build asked pass by pass."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench import slow_api
from pipeline.plan import make_plan
from pipeline.settings import load_config
from pipeline.teachers.chains import chain_spans, not_chained
from pipeline.teachers.runtime import TeacherRuntime
from pipeline.teachers.stage import TeacherStage
from pipeline.teachers.teacher_config import kind_of

from fake_openai import FakeOpenAI


def spans_of(*overrides: str) -> dict[str, list[str]]:
    teachers = [o for key in ("teacher", "teacher2")
                for o in (f"{key}=openai", f"{key}.model=judge", f"{key}.base_url=http://x")]
    plan = make_plan(load_config([*teachers, *overrides]))
    return {first: [link.stage.name for link in span]
            for first, span in chain_spans(plan.stages, plan.columns_before).items()}


def test_a_span_runs_from_the_first_teacher_stage_to_the_last_through_row_stages():
    assert spans_of() == {"teacher": ["teacher", "verdict_filter", "bootstrap"]}
    assert spans_of("recipe.stages.swap_consistency={}") == {
        "teacher": ["teacher", "verdict_filter", "bootstrap", "swap_consistency"]}
    # one teacher stage alone is a pass, not a chain
    assert spans_of("recipe.stages.bootstrap=null") == {}
    # a stage that sees every row at once between two teacher stages ends the span
    assert spans_of("recipe.stages.bootstrap=null", "recipe.stages.swap_consistency={}",
                    "recipe.stages.balance_positions=null") == {
        "teacher": ["teacher", "verdict_filter", "swap_consistency"]}


def test_only_teachers_that_answer_request_by_request_chain():
    kinds = {name: kind_of(load_config([f"teacher={name}", "teacher.model=m"]).teacher).chainable
             for name in ("openai", "openai_batch", "anthropic", "anthropic_batch",
                          "vllm_server", "vllm_engines")}
    assert kinds == {"openai": True, "openai_batch": False, "anthropic": True,
                     "anthropic_batch": False, "vllm_server": True, "vllm_engines": True}


@pytest.mark.parametrize("teachers, why", [
    # one local instance shared by both passes; a local model and an API; GPU instances
    (["teacher=vllm_server", "teacher2=vllm_server", "teacher.max_tokens=320"], None),
    (["teacher=vllm_engines", "teacher2=vllm_engines"], None),
    (["teacher=vllm_server", "teacher2=openai", "teacher2.model=o3",
      "teacher2.base_url=http://x"], None),
    (["teacher=vllm_server", "teacher2=vllm_engines", "teacher.num_gpus=1",
      "teacher2.num_gpus=1"], None),
    # two instances on the same cores: each slower beside the other than alone
    (["teacher=vllm_server", "teacher2=vllm_engines"], "different model instances"),
    (["teacher=vllm_engines", "teacher2=vllm_engines", "teacher2.max_model_len=2048"],
     "different model instances"),
    (["teacher=vllm_server", "teacher2=openai_batch", "teacher2.model=o3",
      "teacher2.base_url=http://x"],
     "bootstrap's teacher (openai_batch) answers a pass its own way"),
])
def test_a_span_is_chained_unless_a_teacher_answers_its_own_way_or_cpus_would_be_shared(
        teachers, why):
    plan = make_plan(load_config(teachers))
    span = chain_spans(plan.stages, plan.columns_before)["teacher"]
    found = not_chained(span)
    assert found is None if why is None else why in found


ANSWER = TeacherRuntime.answer


def _build(tmp_path, url: str, name: str, monkeypatch, chains: bool, cache: str
           ) -> tuple[dict, dict]:
    """The sample build with the swap check, both teachers on `url`, over blocks of 16 rows;
    returns its manifest and, per teacher stage, how many requests its pass step found left."""
    from pipeline import build
    from pipeline.teachers import runtime
    from pipeline.teachers.chains import chain_spans as spans

    cfg = load_config([f"output.dir={tmp_path / name}", "ray.block_rows=16",
                       "recipe.stages.swap_consistency={}",
                       *(f"{k}={v}" for key in ("teacher", "teacher2") for k, v in (
                           (key, "openai"), (f"{key}.model", f"judge-{key}"),
                           (f"{key}.base_url", url), (f"{key}.max_tokens", "256"),
                           (f"{key}.cache_dir", tmp_path / cache)))])
    plan = make_plan(cfg)
    left: dict[str, int] = {}
    asked = ANSWER

    def counted(self, requests, n, teacher, key, who, resources):
        left[who] = n
        return asked(self, requests, n, teacher, key, who, resources)

    monkeypatch.setattr(runtime.TeacherRuntime, "answer", counted)
    monkeypatch.setattr(build, "chain_spans", spans if chains else lambda stages, columns: {})
    manifest, _, _ = build.run_build(cfg, plan)
    assert {s.name for s in plan.stages if isinstance(s, TeacherStage)} == set(left)
    return manifest, left


@pytest.mark.e2e
def test_chains_ask_what_the_passes_would_once_each_and_write_the_same_bytes(
        tmp_path, monkeypatch, caplog, local_ray):
    """The three builds share one Ray, as builds joined to a cluster do."""
    import pyarrow.parquet as pq

    with FakeOpenAI(lambda body, n: (200, slow_api.answer(body, 50))) as server:
        url = server.base_url
        chained, left_chained = _build(tmp_path, url, "chained", monkeypatch, True, "cache-a")
        by_chains = Counter(json.dumps(r, sort_keys=True) for r in server.requests)
        server.requests.clear()
        # pass by pass from the same cache: the same bytes, nothing asked
        said = [r.getMessage() for r in caplog.records]
        # the token counter worked ahead while the teachers answered (its counts cached)
        assert any(m.startswith("token_lengths: ") and m.endswith(
            "blocks), while the teachers answered") for m in said)
        caplog.clear()
        reread, _ = _build(tmp_path, url, "reread", monkeypatch, False, "cache-a")
        assert not server.requests
        assert not any("worked on ahead" in r.getMessage() for r in caplog.records), \
            "nothing to wait for, nothing done ahead"
        # pass by pass from an empty cache: the same requests, each once
        passes, left_passes = _build(tmp_path, url, "passes", monkeypatch, False, "cache-b")
        by_passes = Counter(json.dumps(r, sort_keys=True) for r in server.requests)
    assert reread["files"] == chained["files"], "the same shards, byte for byte"
    assert by_chains == by_passes and set(by_chains.values()) == {1}, "each request once"
    # two caches filled apart differ only in the latency each answer took
    for part in ("sft", "rl", "rejected"):
        a, b = (pq.read_table(tmp_path / name / part).drop_columns(["latency_s"]).to_pylist()
                if part != "rl" else pq.read_table(tmp_path / name / part).to_pylist()
                for name in ("chained", "passes"))
        assert a == b and a, part
    # the chains asked every later pass's requests: their pass steps found nothing left
    assert set(left_chained.values()) == {0}
    assert left_passes == {"teacher": 37, "bootstrap": 16, "swap_consistency": 37}
