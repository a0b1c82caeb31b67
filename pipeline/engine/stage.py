"""The stage contract: a name, the columns read and written, resources, and a batch transform.

A stage never drops a row. It returns as many rows as it was given, and a row it will not pass
on gets an outcome and a reason instead. The engine hands a stage only the rows still in play,
so a stage never has to think about rows another stage has already decided.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any, ClassVar

import pyarrow as pa
from omegaconf import DictConfig, OmegaConf

from pipeline.engine.schema import ALIVE, declare, put_column


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs from Ray."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory_mb: int | None = None
    # Actors for stateful stages (clients, engines); None: stateless tasks.
    actors: int | None = None

    def ray_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"num_cpus": self.num_cpus}
        if self.num_gpus:
            args["num_gpus"] = self.num_gpus
        if self.memory_mb:
            args["memory"] = self.memory_mb * 1024 * 1024
        return args


@dataclass(frozen=True)
class NoParams:
    """For stages without settings."""


@dataclass
class BuildContext:
    """What the build knows that stages may use: the resolved config, and what it set up for
    the stages that ask a model (pipeline/teachers/stage.py reads these; the engine does not)."""

    cfg: Any
    # Per stage, the endpoints it asks (pipeline/teachers/transport.py; replicas take turns);
    # empty when nothing was started because the cache answers everything.
    endpoints: dict[str, list[Any]] = field(default_factory=dict)
    # The build's spend meter of each teacher setting ("teacher", "teacher2").
    meters: dict[str, Any] = field(default_factory=dict)
    # Per stage, the keys answered this run before the stage ran, each with its error (None:
    # answered, in the cache).
    answered: dict[str, dict[str, str | None]] = field(default_factory=dict)


class Stage:
    """Base of every stage after the sources. Subclasses set the class attributes."""

    name: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]]
    outputs: ClassVar[tuple[str, ...]]
    # Columns this stage adds to the build, with their Arrow types (the engine's own are in
    # pipeline/engine/schema.py); `run_only_columns` among them are facts about the run (was it
    # cached), counted in the manifest but never written, so a rerun writes the same bytes.
    columns: ClassVar[dict[str, pa.DataType]] = {}
    run_only_columns: ClassVar[tuple[str, ...]] = ()
    # Columns read when an earlier stage wrote them (an optional stage's output); absent ones
    # are simply not there.
    optional_inputs: ClassVar[tuple[str, ...]] = ()
    # Set: the stage sees each group of rows with equal values of these columns at once (`()`:
    # all live rows as one group), as a table of its declared `inputs` (and the row key) only,
    # gathered on the driver: declare light columns (ids, labels), not texts.
    group_by: ClassVar[tuple[str, ...] | None] = None
    # True: the stage needs all live rows at once (dedup across sources) and implements
    # `process_dataset` with Ray Data operations instead of `process`.
    whole_dataset: ClassVar[bool] = False
    # True (a `whole_dataset` stage only): the stage returns its rows plus new ones, each new
    # row under a source name of its own; after the stage ran, `added_keys` holds each new
    # source's (source_index, pair_index) of every row, so the manifest accounts for them as it
    # does for rows read.
    adds_rows: ClassVar[bool] = False
    added_keys: dict[str, list[tuple[int, int]]]
    Params: ClassVar[type] = NoParams
    # Names of earlier stages whose rejected rows this stage takes back into play (pass 2
    # retries what the verdict filter rejected). Every other stage sees live rows only.
    reopens: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declare(cls.__dict__.get("columns", {}), f"stage class {cls.__name__}")

    @property
    def added(self) -> dict[str, int]:
        """How many rows each source this stage added got (none for most stages)."""
        return {source: len(keys) for source, keys in getattr(self, "added_keys", {}).items()}

    def statistics(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Counts of this stage's own for the manifest (`stages[].statistics`), from a batch of
        the final rows as the writer streams them (each row once, whatever its part); the
        writer adds up what every batch returns. Runs on the writer's workers."""
        return {}

    @property
    def is_row_stage(self) -> bool:
        """Whether the stage maps each block on its own (so it can share a pass with the
        row stages around it)."""
        return self.group_by is None and not self.whole_dataset

    def __init__(self, params: Any, ctx: BuildContext) -> None:
        self.params = params
        self.ctx = ctx

    @cached_property
    def templates(self) -> Any:
        """The judge prompt's templates and quote threshold (`prompt.*`), for stages that write
        judge prompts or check traces row by row: a config lookup costs more than filling a
        template."""
        return OmegaConf.to_object(self.ctx.cfg.prompt)

    def resources(self) -> Resources:
        """What one worker of the stage needs by default (`configured_resources` is what runs)."""
        return Resources()

    def configured_resources(self) -> Resources:
        """The defaults with the user's `recipe.stages.<name>.resources` over them, so that on
        a cluster teacher engines can ask for GPUs and CPU stages for more cores."""
        declared = self.resources()
        stages = self.ctx.cfg.recipe.stages if self.ctx.cfg is not None else {}
        raw = (stages.get(self.name) or {}).get("resources")
        if not raw:
            return declared
        values = OmegaConf.to_container(raw) if isinstance(raw, DictConfig) else dict(raw)
        return replace(declared, **values)

    def preflight(self) -> None:
        """Checks against the whole config, run by the plan before any work starts; raise
        `ConfigError` with a one-line message."""

    def prepare(self) -> None:
        """Run once on the driver right before the stage's pass: build what every worker
        shares (an index) and keep it on the stage, large things as object refs."""

    def summary(self) -> dict[str, Any]:
        """What the stage wants recorded in the manifest beside its counts (read after the run)."""
        return {}

    def process(self, rows: pa.Table) -> pa.Table:
        """Transform rows still in play; return the same rows, in the same order."""
        raise NotImplementedError

    def ahead(self, rows: pa.Table) -> None:
        """Work the stage can do before its rows reach it, run while the build waits on a
        teacher (latency, not CPU): fill a cache of the stage's own, keyed by content, from
        columns the stages before it leave as they are. Given, on the workers, the live rows of
        each block (the stage's declared columns) as they are when the first teacher stage is
        reached; whatever it leaves undone, `process` does, so it never changes a result."""

    @property
    def works_ahead(self) -> bool:
        return type(self).ahead is not Stage.ahead

    def process_dataset(self, live: Any) -> Any:
        """For `whole_dataset` stages: a Ray Dataset of the live rows in, the same rows out."""
        raise NotImplementedError


def param_names(params_cls: type) -> list[str]:
    return [f.name for f in fields(params_cls)]


def map_rows(rows: pa.Table, fn: Callable[[dict[str, Any]], dict[str, Any]],
             columns: tuple[str, ...] = ()) -> pa.Table:
    """Apply a per-row function returning column updates; the row-wise stages' common loop.
    `columns` are written even when no row updates them (as nulls, or as they were)."""
    return set_rows(rows, dict(enumerate(map(fn, rows.to_pylist()))), columns)


def set_rows(rows: pa.Table, updates: dict[int, dict[str, Any]],
             columns: tuple[str, ...] = ()) -> pa.Table:
    """Column updates by row position; `columns` are written even when no row updates them.
    Only the columns written are converted, so rows nobody touches cost nothing."""
    names = sorted({k for u in updates.values() for k in u} | set(columns))
    out = rows
    for name in names:
        values = (rows.column(name).to_pylist() if name in rows.column_names
                  else [None] * rows.num_rows)
        for i, u in updates.items():
            if name in u:
                values[i] = u[name]
        out = put_column(out, name, values)
    return out


def decide(outcome: str, reason: str, stage: str, detail: str = "") -> dict[str, Any]:
    """Column updates that settle a row's fate."""
    return {"outcome": outcome, "reason": reason, "detail": detail, "decided_by": stage}


FATE = ("outcome", "reason", "detail", "decided_by")


def with_fates(rows: pa.Table, decided: dict[int, dict[str, Any]]) -> pa.Table:
    """`rows` with the fate columns of a group stage that settles some rows (position ->
    `decide(...)`) and leaves the others in play."""
    columns = {name: [ALIVE if name == "outcome" else ""] * rows.num_rows for name in FATE}
    for i, fate in decided.items():
        for name in FATE:
            columns[name][i] = fate[name]
    for name in FATE:
        rows = rows.append_column(name, pa.array(columns[name], pa.string()))
    return rows
