"""Configuration mistakes fail before any work, in one line that names the key."""

from __future__ import annotations

import re

import pytest

from pipeline.engine.config import ConfigError
from pipeline.plan import make_plan
from pipeline.settings import load_config


def error_of(overrides: list[str], plan: bool = False) -> str:
    with pytest.raises(ConfigError) as err:
        cfg = load_config(overrides)
        if plan:
            make_plan(cfg)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_defaults_compose_and_plan(cfg):
    assert cfg.recipe.name == "sample" and cfg.teacher.backend == "vllm_server"
    plan = make_plan(cfg)
    assert [s.name for s in plan.stages] == ["validate", "decontaminate", "exact_dedup",
                                             "near_dedup", "split", "label_check", "place",
                                             "render", "teacher",
                                             "verdict_filter", "bootstrap", "token_lengths"]
    assert {s.name for s, _ in plan.sources} == {"skywork", "code_preference_pairs",
                                                 "math_step_dpo"}


def test_any_key_can_be_overridden():
    cfg = load_config(["seed=9", "teacher.max_tokens=77", "recipe.stages.split.distill_fraction=0.25",
                       "output.dir=/tmp/x", "sources.skywork.limit=3"])
    assert (cfg.seed, cfg.teacher.max_tokens, cfg.output.dir) == (9, 77, "/tmp/x")
    assert cfg.recipe.stages.split.distill_fraction == 0.25 and cfg.sources.skywork.limit == 3


def test_rmr1_recipe():
    cfg = load_config(["recipe=rmr1"])
    assert cfg.recipe.stages.split.distill_fraction == 0.12
    assert cfg.sources.code_preference_pairs.limit == 8000
    assert cfg.sources.code_preference_pairs.shuffle_seed == 42
    assert list(cfg.sources.skywork.exclude_subsets) == ["magpie_ultra"]


@pytest.mark.parametrize("overrides, plan, key", [
    (["teacher.max_tokenz=3"], False, "teacher.max_tokenz"),
    (["teacher.max_tokens=many"], False, "teacher.max_tokens"),
    (["recipe=nope"], False, "recipe"),
    (["teacher=openai"], False, "teacher.model"),
    (["recipe.stages.split.distill_fractoin=0.5"], False, "distill_fractoin"),
    (["recipe.stages.split.distill_fraction=1.5"], True, "recipe.stages.split"),
    (["recipe.stages.validate.max_chars=0"], True, "recipe.stages.validate"),
    (["+recipe.stages.shuffle={}"], True, "shuffle"),
    (["teacher.backend=ollama"], True, "teacher.backend"),
    (["teacher.concurrency=0"], True, "teacher.concurrency"),
    (["teacher=openai", "teacher.model=o3", "teacher.api_key_env=RF_UNSET_KEY"], True,
     "RF_UNSET_KEY"),
    (["sources.skywork.name=other"], True, "sources.skywork.name"),
])
def test_mistakes_name_the_key(overrides, plan, key):
    assert key in error_of(overrides, plan)


def test_a_stage_placed_before_its_inputs_exist_is_refused():
    message = error_of(["~recipe.stages.split"], plan=True)
    assert "label_check" in message and "split" in message


def test_stage_resources_come_from_config():
    plan = make_plan(load_config(["++recipe.stages.teacher.resources.num_gpus=1",
                                  "++recipe.stages.teacher.resources.actors=4",
                                  "++recipe.stages.token_lengths.resources.num_cpus=0.5",
                                  "++recipe.stages.near_dedup.resources.memory_mb=2048"]))
    got = {s.name: s.configured_resources() for s in plan.stages}
    assert (got["teacher"].num_gpus, got["teacher"].actors, got["teacher"].num_cpus) == (1, 4, 1.0)
    assert got["teacher"].ray_args() == {"num_cpus": 1.0, "num_gpus": 1}
    # set over the stage's own defaults: token_lengths keeps its two tokenizer actors
    assert (got["token_lengths"].num_cpus, got["token_lengths"].actors) == (0.5, 2)
    assert got["near_dedup"].ray_args()["memory"] == 2048 * 2**20
    assert got["validate"] == got["validate"].__class__()  # untouched stages keep their defaults


@pytest.mark.parametrize("override, message", [
    ("++recipe.stages.teacher.resources.gpus=1", "recipe.stages.teacher.resources: unknown ['gpus']"),
    ("++recipe.stages.split.resources.num_cpus=-2", "recipe.stages.split.resources.num_cpus=-2"),
    ("++recipe.stages.teacher.resources.actors=0", "resources.actors must be >= 1"),
    ("teacher.replicas=0", "teacher.replicas must be >= 1"),
    ("teacher.num_gpus=-1", "teacher.num_gpus must be >= 0"),
])
def test_bad_resources_are_refused_before_any_work(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_plan(load_config([override]))


def test_publishing_needs_a_local_output():
    with pytest.raises(ConfigError, match="publish.repo needs a local output.dir"):
        make_plan(load_config(["output.dir=s3://bucket/out", "publish.repo=org/name"]))


@pytest.mark.parametrize("overrides, message", [
    (["teacher.max_cost_usd=0"], "teacher.max_cost_usd must be > 0"),
    (["teacher=openai", "teacher.model=my-judge", "teacher.base_url=http://h/v1",
      "teacher.max_cost_usd=5"], "teacher.max_cost_usd needs teacher.price_input_per_mtok and "
     "teacher.price_output_per_mtok (USD per million tokens); 'my-judge' has no price in "
     "conf/prices.yaml"),
    (["teacher2=openai_batch", "teacher2.model=o3", "teacher2.base_url=http://h/v1",
      "teacher2.max_cost_usd=5", "teacher2.price_output_per_mtok=8"],
     "teacher2.max_cost_usd needs teacher2.price_input_per_mtok"),
    (["teacher.tokenizer=/nonexistent/tokenizer"], "teacher.tokenizer=/nonexistent/tokenizer"),
])
def test_cost_cap_and_tokenizer_mistakes_are_refused_before_any_work(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_plan(load_config(overrides))


def test_a_well_known_model_is_capped_at_its_listed_prices_without_any_typed():
    from pipeline.teachers.prices import rates

    cfg = load_config(["teacher=openai", "teacher.model=o3", "teacher.base_url=http://h/v1",
                       "teacher.max_cost_usd=5", "teacher2=openai_batch",
                       "teacher2.model=claude-3-7-sonnet-20250219", "teacher2.base_url=http://h/v1"])
    make_plan(cfg)
    assert (rates(cfg.teacher).input, rates(cfg.teacher).output) == (2.0, 8.0)
    listed = rates(cfg.teacher2)  # a dated snapshot finds its model's entry
    assert (listed.input, listed.cache_read, listed.cache_write) == (3.0, 0.3, 3.75)
    assert listed.source.startswith("conf/prices.yaml, checked ")
    # a teacher's own prices win, cache prices then follow the backend's share of its input
    own = rates(load_config(["teacher=openai", "teacher.model=o3",
                             "teacher.price_input_per_mtok=4",
                             "teacher.price_output_per_mtok=16"]).teacher)
    assert (own.input, own.output, own.cache_read, own.source) == (4, 16, 2.0, "teacher settings")


def test_one_override_removes_a_source_with_the_recipes_settings_for_it():
    cfg = load_config(["recipe=rmr1", "~source@sources.code_preference_pairs"])
    assert set(cfg.sources) == {"skywork", "math_step_dpo"}  # its limit went with it
    message = error_of(["+sources.skywrk.limit=3"])
    assert "sources.skywrk" in message and "+source@sources.skywrk=" in message


def test_data_files_are_read_under_any_recipe_and_checked_before_any_work(tmp_path):
    import json

    from stages.sources import get_source

    row = {"chosen": [{"role": "user", "content": "Own file?"},
                      {"role": "assistant", "content": "Yes."}],
           "rejected": [{"role": "user", "content": "Own file?"},
                        {"role": "assistant", "content": "No."}], "source": "mine"}
    mine = tmp_path / "mine.jsonl"
    mine.write_text(json.dumps(row) + "\n")
    cfg = load_config([f"sources.skywork.data_files={mine}"])  # the sample recipe
    make_plan(cfg)
    table = get_source("skywork").raw_table(cfg.sources.skywork, use_sample=True)
    assert table.num_rows == 1 and table.column("source").to_pylist() == ["mine"]
    message = error_of([f"sources.skywork.data_files={tmp_path}/none-*.parquet"], plan=True)
    assert "sources.skywork.data_files" in message and "matches no file" in message


def test_a_source_may_come_only_as_files():
    assert load_config(["sources.skywork.hub_id=null"]).sources.skywork.hub_id is None
    message = error_of(["recipe=rmr1", "sources.skywork.hub_id=null"], plan=True)
    assert "sources.skywork has neither hub_id nor data_files" in message


def test_each_teacher_yaml_names_a_backend_module_and_nothing_else_knows_their_names():
    """A backend is one module in pipeline/teachers/backends/ and one YAML in conf/teacher/: the plan,
    engine, spend and client code ask it, and never spell a backend's name."""
    from pipeline.engine.config import CONF_DIR
    from pipeline.teachers.backends import registry, renamed
    from pipeline.teachers.teacher_config import kind_of

    names = {load_config([f"teacher={p.stem}", "teacher.model=m"]).teacher.backend
             for p in (CONF_DIR / "teacher").glob("*.yaml")}
    assert names == set(registry()), "an old name's YAML loads as the backend's new name"
    batch = load_config(["teacher=openai_batch", "teacher.model=m"]).teacher
    assert kind_of(batch).price_factor == 0.5
    names |= set(renamed())
    root = CONF_DIR.parent / "pipeline"
    outside = [p for p in root.rglob("*.py") if "backends" not in p.parts]
    for path in [*outside, *(CONF_DIR.parent / "stages").rglob("*.py")]:
        code = path.read_text()
        for name in names:
            assert not re.search(rf"backend\s*(==|!=|in)\s*.*['\"]{name}['\"]", code), path
    with pytest.raises(ConfigError, match="teacher.backend='grpc' is not one of anthropic, "
                                          "anthropic_batch, openai, openai_batch, vllm_engines"):
        make_plan(load_config(["teacher.backend=grpc"]))


def test_a_backend_s_old_name_still_works_with_a_one_line_notice(caplog):
    """`local` is now `vllm_server` and `vllm` is `vllm_engines`: a config, an override or a
    YAML with the old name loads as the new one, and says so once per setting."""
    with caplog.at_level("WARNING", logger="rubricforge"):
        cfg = load_config(["teacher=local", "teacher2=vllm"])
    assert (cfg.teacher.backend, cfg.teacher2.backend) == ("vllm_server", "vllm_engines")
    notices = [r.getMessage() for r in caplog.records]
    assert notices == [
        "teacher: backend 'local' is now called 'vllm_server' (teacher=vllm_server): the old "
        "name still works",
        "teacher2: backend 'vllm' is now called 'vllm_engines' (teacher2=vllm_engines): the old "
        "name still works"]
    assert load_config(["teacher=vllm_server"]) == load_config(["teacher=local"])


def test_an_estimate_needs_no_api_key_and_a_build_does(monkeypatch):
    """`--estimate` asks nothing, so it runs before the keys are set; the build refuses to
    start without them, before any work."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    cfg = load_config(["recipe=rmr1", "teacher=anthropic_batch",
                       "teacher.model=claude-3-7-sonnet-20250219", "teacher2=openai_batch",
                       "teacher2.model=o3"])
    make_plan(cfg, sending=False)
    with pytest.raises(ConfigError, match="teacher=anthropic_batch needs an API key in the "
                                          "environment variable ANTHROPIC_API_KEY"):
        make_plan(cfg)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    with pytest.raises(ConfigError, match="teacher2=openai_batch needs an API key"):
        make_plan(cfg)
