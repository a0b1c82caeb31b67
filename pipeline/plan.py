"""Turn a resolved config into the stages to run, checking everything that can be checked
before Ray starts or a teacher is asked: names, parameters, column contracts, the teacher's
prerequisites and the input files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from omegaconf import OmegaConf

from pipeline.engine import storage
from pipeline.engine.config import ConfigError
from pipeline.engine.reading import check_data_files
from pipeline.engine.schema import CANONICAL_COLUMNS, COLUMNS, RUN_ONLY_COLUMNS, schema_of
from pipeline.engine.stage import BuildContext, Resources, Stage, param_names
from pipeline.teachers.backends import backend_of
from pipeline.teachers.prices import listed, rates
from pipeline.teachers.stage import TeacherStage
from stages import stage_registry
from stages.sources import registry as source_registry
from stages.sources.base import SAMPLES_DIR, Source

# Columns the writer needs to produce the sft/ and rl/ parts.
WRITER_INPUTS = ("split", "winner", "context_messages", "trace", "verdict")


@dataclass
class Plan:
    sources: list[tuple[Source, Any]]
    stages: list[Stage]
    # The columns in flight after each stage (index i: after stages[i]), as Arrow schemas.
    columns_after: list[pa.Schema]
    ctx: BuildContext

    @property
    def columns_before(self) -> list[pa.Schema]:
        """The columns each stage is given (index i: stages[i]'s input)."""
        return [schema_of(CANONICAL_COLUMNS), *self.columns_after[:-1]]

    @property
    def final_columns(self) -> pa.Schema:
        return self.columns_after[-1] if self.columns_after else schema_of(CANONICAL_COLUMNS)

    @property
    def run_only_columns(self) -> tuple[str, ...]:
        """Columns counted in the manifest and never written (facts about this run)."""
        return (*RUN_ONLY_COLUMNS, *(c for s in self.stages for c in s.run_only_columns))


def make_plan(cfg: Any, sending: bool = True) -> Plan:
    """`sending`: the build will ask its teachers (an estimate asks nothing, so needs no keys)."""
    from pipeline.output.publish import REPO_ID

    if cfg.publish.repo is not None and not REPO_ID.match(cfg.publish.repo):
        raise ConfigError(f"publish.repo={cfg.publish.repo!r} is not a Hub id of "
                          "the form org/name")
    if cfg.publish.repo is not None and storage.is_remote(cfg.output.dir):
        raise ConfigError(f"publish.repo needs a local output.dir (it is "
                          f"{cfg.output.dir!r}); publish a copy with `rubricforge publish`")
    if cfg.ray.block_rows is not None and cfg.ray.block_rows < 1:
        raise ConfigError(f"ray.block_rows={cfg.ray.block_rows} must be >= 1")
    # read by every stage that checks a trace (the filter, pass 2, the swap check)
    if not 0 <= cfg.prompt.min_quote_fidelity <= 1:
        raise ConfigError(f"prompt.min_quote_fidelity is {cfg.prompt.min_quote_fidelity}: set "
                          "a share between 0 and 1 (the default, 0.7, is calibrated in "
                          "bench/trace_checks.py)")
    ctx = BuildContext(cfg=cfg)
    sources = _sources(cfg)
    stages, columns_after = _stages(cfg, ctx)
    _check_teacher(cfg, stages, sending)
    return Plan(sources=sources, stages=stages, columns_after=columns_after, ctx=ctx)


def _sources(cfg: Any) -> list[tuple[Source, Any]]:
    if not cfg.sources:
        raise ConfigError("no sources (key: sources); pick a recipe or add "
                          "+source@sources.<name>=<name>")
    return [(checked_source(key, scfg, cfg.recipe.use_samples), scfg)
            for key, scfg in cfg.sources.items()]


def checked_source(key: str, scfg: Any, use_samples: bool) -> Source:
    """The source configured under `sources.<key>`, after every check a build makes before
    any work (`rubricforge sources` makes the same ones); raises ConfigError naming the key."""
    known = source_registry()
    if scfg.name != key:
        raise ConfigError(f"sources.{key}.name is '{scfg.name}', expected "
                          f"'{key}' (the source's module name)")
    if key not in known:
        raise ConfigError(f"unknown source '{key}' (key: sources.{key}); known: "
                          f"{', '.join(sorted(known))}; add stages/sources/{key}.py")
    # a source's own data_files are read whatever the recipe (the sample is the default)
    sample = SAMPLES_DIR / scfg.sample_file
    if scfg.data_files:
        check_data_files(f"sources.{key}", scfg.data_files)
        if scfg.data_dir:
            raise ConfigError(f"sources.{key}.data_dir={scfg.data_dir} picks a "
                              f"folder of hub_id, but data_files is set: put the folder in the "
                              f"data_files path, or drop one of them")
    elif use_samples and not sample.exists():
        raise ConfigError(f"sources.{key}.sample_file: {sample} does not exist")
    if not (use_samples or scfg.data_files or scfg.hub_id):
        raise ConfigError(f"sources.{key} has neither hub_id nor data_files: "
                          f"set sources.{key}.data_files=<files> (or its hub_id)")
    if scfg.limit is not None and scfg.limit < 0:
        raise ConfigError(f"sources.{key}.limit must be >= 0 or null")
    cls = known[key]
    return cls(_params(cls, OmegaConf.to_container(scfg.params), f"sources.{key}.params"))


def _stages(cfg: Any, ctx: BuildContext) -> tuple[list[Stage], list[pa.Schema]]:
    known = stage_registry()
    stages: list[Stage] = []
    columns: list[str] = list(CANONICAL_COLUMNS)
    columns_after: list[pa.Schema] = []
    for name, raw_params in cfg.recipe.stages.items():
        key = f"recipe.stages.{name}"
        if name not in known:
            raise ConfigError(f"unknown stage '{name}' (key: {key}); known: "
                              f"{', '.join(sorted(known))}")
        if raw_params is None:  # listed where it would run, switched off
            continue
        cls = known[name]
        raw = OmegaConf.to_container(raw_params)
        _check_resources(raw.pop("resources", None), key)
        params = _params(cls, raw, key)
        for earlier in cls.reopens:
            if earlier not in [s.name for s in stages]:
                raise ConfigError(f"stage '{name}' retries rows of '{earlier}', "
                                  f"which must come before it (key: recipe.stages)")
        missing = [c for c in cls.inputs if c not in columns]
        if missing:
            writers = sorted({s for s, c in known.items() for m in missing if m in c.outputs})
            raise ConfigError(f"stage '{name}' needs column(s) {missing} that no "
                              f"earlier stage writes (key: recipe.stages); put one of "
                              f"{', '.join(writers) or 'none'} before it")
        stage = cls(params, ctx)
        stage.preflight()
        stages.append(stage)
        undeclared = [c for c in cls.outputs if c not in COLUMNS]
        if undeclared:  # a stage writes a column nobody typed
            raise ConfigError(f"stage '{name}' writes column(s) {undeclared} that neither "
                              "pipeline/engine/schema.py nor the stage's `columns` declares "
                              "(key: recipe.stages); declare them with their Arrow types")
        columns += [c for c in cls.outputs if c not in columns]
        columns_after.append(schema_of(columns))
    missing = [c for c in WRITER_INPUTS if c not in columns]
    if missing:
        raise ConfigError(f"the recipe's stages never write {missing}, which the "
                          f"output needs (key: recipe.stages)")
    return stages, columns_after


def _check_resources(raw: Any, key: str) -> None:
    if raw is None:
        return
    known = param_names(Resources)
    if not isinstance(raw, dict) or set(raw) - set(known):
        extra = sorted(set(raw) - set(known)) if isinstance(raw, dict) else raw
        raise ConfigError(f"{key}.resources: unknown {extra}; settings: "
                          f"{', '.join(known)}")
    for name, value in raw.items():
        if value is not None and (not isinstance(value, int | float) or value < 0):
            raise ConfigError(f"{key}.resources.{name}={value!r} must be a "
                              f"number >= 0 or null")
    if raw.get("actors") == 0:
        raise ConfigError(f"{key}.resources.actors must be >= 1 (null: tasks)")


def _params(cls: type[Stage] | type[Source], raw: Any, key: str) -> Any:
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls.Params), raw or {})
        params = OmegaConf.to_object(merged)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{first} (key: {key}); settings of '{cls.name}': "
                          f"{', '.join(param_names(cls.Params)) or 'none'}") from None
    check = getattr(params, "check", None)
    if check:
        problem = check()
        if problem:
            raise ConfigError(f"{key}.{problem}")
    return params


def _check_teacher(cfg: Any, stages: list[Stage], sending: bool) -> None:
    check_teachers(cfg, [s.teacher_key for s in stages if isinstance(s, TeacherStage)], sending)


def check_teachers(cfg: Any, asked: list[str], sending: bool = True) -> None:
    """Every teacher setting's values, and what the ones that will be asked need, before any
    work (`teacher` is always checked: it is the default of every teacher stage); their keys
    only when requests will be sent (`sending`: not for an estimate)."""
    for key in sorted({"teacher", *asked}):
        _check_one_teacher(key, cfg[key], key in asked, sending)


def _check_one_teacher(key: str, t: Any, asked: bool, sending: bool) -> None:
    backend = backend_of(t)  # known: settings.py checked it
    for name in ("max_tokens", "concurrency", "max_attempts"):
        if getattr(t, name) < 1:
            raise ConfigError(f"{key}.{name} must be >= 1")
    if t.timeout_s <= 0:
        raise ConfigError(f"{key}.timeout_s must be > 0")
    if t.max_cost_usd is not None:
        if t.max_cost_usd <= 0:
            raise ConfigError(f"{key}.max_cost_usd must be > 0, or null for no cap")
        if not rates(t).known:
            why = ("" if listed(t.model) else
                   f"; '{t.model}' has no price in conf/prices.yaml")
            raise ConfigError(f"{key}.max_cost_usd needs {key}.price_input_per_mtok "
                              f"and {key}.price_output_per_mtok (USD per million tokens){why}")
    backend.check(key, t, asked)
    if not asked:
        return
    if sending:
        backend.check_secret(key, t)
    if t.tokenizer:  # one that cannot be loaded stops the build here, not in a worker
        from pipeline.teachers.tokenizers import load_tokenizer

        load_tokenizer(t.tokenizer, f"{key}.tokenizer")
