"""Run a plan on Ray Data: sources, then each stage in order, then the sorted rows into shards.

Stages see only rows still in play; the engine passes decided rows around them and checks
every batch a stage returns against its declared contract. The output is written to a
temporary directory that replaces `output.dir` only when everything is written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import ray
from ray.data import DataContext, Dataset

from pipeline import storage
from pipeline.answering import answer_pending
from pipeline.backends import backend_of
from pipeline.batches import (
    StageActor,
    StageContractError,
    apply_to_batch,
    apply_updates,
    check_output,
    keep,
    live_columns,
    requests_of,
)
from pipeline.config import expand
from pipeline.plan import Plan
from pipeline.progress import TeacherProgress
from pipeline.ray_session import (
    dataset_of,
    joined_cluster,
    ray_session,
    solid_blocks,
)
from pipeline.schema import CANONICAL_COLUMNS, ROW_KEY, conform, schema_of
from pipeline.spend import Meter
from pipeline.stage import Stage
from pipeline.writer import write_parts

log = logging.getLogger("rubricforge")

# The names workers resolve (their module must import fast: pipeline/batches.py)
_keep, _StageActor = keep, StageActor


def apply_stage(ds: Dataset, stage: Stage, columns: tuple[str, ...]) -> Dataset:
    """The stage over the dataset; a row stage sees a whole block per call."""
    if stage.group_by is not None:
        return _apply_to_groups(ds, stage, columns)
    if stage.whole_dataset:
        return _apply_to_live_set(ds, stage, columns)
    resources = stage.configured_resources()
    res = resources.ray_args()
    if resources.actors:
        return ds.map_batches(_StageActor, fn_constructor_args=(stage, columns),
                              compute=ray.data.ActorPoolStrategy(size=resources.actors),
                              batch_format="pyarrow", batch_size=None, **res)
    return ds.map_batches(partial(apply_to_batch, stage, columns), batch_format="pyarrow",
                          batch_size=None, **res)


def _apply_to_groups(ds: Dataset, stage: Stage, columns: tuple[str, ...]) -> Dataset:
    """Group stages read a few light columns (ids, labels) of many rows: those columns of the
    rows in play are gathered on the driver, each group is given to the stage there, and its
    outputs are mapped back onto the rows. No row moves through a shuffle."""
    names = tuple(dict.fromkeys((*ROW_KEY, *stage.group_by, *stage.inputs,
                                 *(c for c in stage.optional_inputs if c in columns))))
    ds = ds.materialize()
    parts = [t for t in ray.get(ds.map_batches(partial(live_columns, stage, names),
                                               batch_format="pyarrow").to_arrow_refs())
             if t.num_rows]
    if not parts:
        return ds.map_batches(partial(conform, names=columns), batch_format="pyarrow")
    live = pa.concat_tables(parts)
    outputs = []
    for _key, rows in _groups(live, stage.group_by):
        out = stage.process(rows)
        check_output(stage, rows.num_rows, out)
        outputs.append(conform(out, (*ROW_KEY, *stage.outputs)))
    updates = ray.put(pa.concat_tables(outputs))
    return ds.map_batches(partial(apply_updates, stage, columns, updates), batch_format="pyarrow")


def _groups(rows: pa.Table, keys: tuple[str, ...]) -> list[tuple[tuple[Any, ...], pa.Table]]:
    """The rows of each distinct value of `keys`, in a stable order (rows keep their order)."""
    if not keys:
        return [((), rows)]
    index: dict[tuple[Any, ...], list[int]] = {}
    for i, key in enumerate(zip(*(rows.column(k).to_pylist() for k in keys), strict=True)):
        index.setdefault(key, []).append(i)
    return [(key, rows.take(index[key])) for key in sorted(index, key=repr)]


def _apply_to_live_set(ds: Dataset, stage: Stage, columns: tuple[str, ...]) -> Dataset:
    """Stages that need all live rows at once (dedup across sources) get them as a dataset;
    decided rows go around them. Every dataset here is rebuilt from solid blocks: the split
    into live and decided rows, and the stage's own shuffles, leave blocks without rows."""
    schema = schema_of(columns)
    ds = ds.materialize()  # read twice below: once for live rows, once for decided ones
    live = solid_blocks(ds.map_batches(partial(_keep, stage, True, None), batch_format="pyarrow"),
                        schema)  # (with no live rows, only its count is read)
    done = solid_blocks(ds.map_batches(partial(_keep, stage, False, columns),
                                       batch_format="pyarrow"), schema)
    n_live = live.count()
    if n_live == 0:
        return done
    out = stage.process_dataset(live).map_batches(partial(conform, names=columns),
                                                  batch_format="pyarrow")
    out = solid_blocks(out, schema)
    n_out = out.count()
    if n_out != n_live:
        raise StageContractError(f"stage '{stage.name}' returned {n_out} rows for {n_live}: "
                                 "stages mark rows, they never drop them")
    return out.union(done)


def read_sources(plan: Plan, use_samples: bool, block_rows: int) -> tuple[Dataset, dict[str, int]]:
    parts, inputs = [], {}
    for source, scfg in plan.sources:
        raw = source.raw_table(scfg, use_samples)
        inputs[source.name] = raw.num_rows
        log.warning("source %s: %d rows read", source.name, raw.num_rows)
        ds = dataset_of(raw, block_rows).map_batches(
            lambda t, s=source, c=scfg: s.map_batch(t, c), batch_format="pyarrow")
        parts.append(ds)
    ds = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    return ds, inputs


class Endpoints:
    """Teacher endpoints for the build: local servers are started the first time a stage has
    requests the cache cannot answer, and shared by every later stage that asks the same model."""

    def __init__(self, stack: contextlib.ExitStack, log_path: Path, on_cluster: bool) -> None:
        self.stack, self.log_path, self.on_cluster = stack, log_path, on_cluster
        self.local: dict[str, list[str]] = {}

    def urls_for(self, teacher: Any, pending: int) -> list[str] | None:
        return backend_of(teacher).urls(teacher, pending, self)


def start_meters(cfg: Any, stages: list[Stage]) -> dict[str, Any]:
    """One spend meter actor per teacher setting the stages ask, for this build only."""
    keys = sorted({s.teacher_key for s in stages if s.teacher_key})
    return {key: ray.remote(Meter).options(num_cpus=0, max_restarts=-1, max_task_retries=-1)
            .remote(cfg[key].max_cost_usd) for key in keys}


def report_spend(cfg: Any, snapshots: dict[str, dict[str, Any]]) -> None:
    """Say what this run spent and, when a cap stopped requests, how to finish."""
    for key, snap in snapshots.items():
        stages = snap["stages"].values()
        refused = sum(s["refused"] for s in stages)
        sent = sum(s["answered"] + s["errors"] for s in stages)
        cap = f" of the ${snap['cap_usd']:.2f} cap" if snap["cap_usd"] is not None else ""
        log.warning("%s %s: %d requests sent this run, $%.4f spent%s", key, cfg[key].model, sent,
                    snap["spent_usd"], cap)
        if refused:
            log.warning("%s.max_cost_usd reached: %d requests not sent, their rows rejected as "
                        "cost_cap; rerun with a higher %s.max_cost_usd to finish (every answer "
                        "so far is cached and will not be paid again)", key, refused, key)


def run_build(cfg: Any, plan: Plan, command: list[str] | None = None
              ) -> tuple[dict[str, Any], str, dict[str, float]]:
    """Build into a staging place beside `output.dir` (a path or fsspec URL) and put it in
    place only when everything is written; a failed build leaves the old output as it was.
    Returns the manifest, where the output is, and each step's seconds (also written to
    `logs/<name>-stages.json`: facts about the run, not the data, so not in the manifest)."""
    final = storage.resolve(cfg.output.dir)
    staging = storage.staging_for(final)
    storage.remove_tree(staging)
    head, name = storage.parent_and_name(final)
    logs = Path(head) / "logs" if not storage.is_remote(final) else expand("~/.cache/rubricforge/logs")
    try:
        manifest, seconds = _build_into(cfg, plan, staging, logs / f"{name}-teacher.log", command)
        storage.commit(staging, final, last=("manifest.json", "README.md"))
    except BaseException:
        storage.remove_tree(staging)
        raise
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{name}-stages.json").write_text(json.dumps({"seconds": seconds}, indent=2) + "\n")
    return manifest, final, seconds


def _build_into(cfg: Any, plan: Plan, out: str, teacher_log: Path,
                command: list[str] | None) -> tuple[dict[str, Any], dict[str, float]]:
    seconds: dict[str, float] = {}
    clock = time.monotonic()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.monotonic()
        seconds[step] = round(now - clock, 2)
        clock = now
        log.warning("%s: done in %.1fs", step, seconds[step])

    with ray_session(cfg.ray), contextlib.ExitStack() as stack:
        DataContext.get_current().enable_progress_bars = sys.stderr.isatty()
        if not sys.stderr.isatty():  # no bars to draw: keep the log to what happened
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        ds, inputs = read_sources(plan, cfg.recipe.use_samples, cfg.ray.block_rows)
        ds = ds.materialize()
        lap("collect")
        columns: tuple[str, ...] = CANONICAL_COLUMNS
        endpoints = Endpoints(stack, teacher_log, on_cluster=joined_cluster(cfg.ray))
        plan.ctx.meters = start_meters(cfg, plan.stages)
        progress = TeacherProgress(plan.ctx.meters)
        stack.callback(progress.close)
        for stage, columns in zip(plan.stages, plan.columns_after, strict=True):
            teacher = stage.teacher_config()
            if teacher is not None:  # (ds: the rows so far, materialized by the last step)
                requests = ds.map_batches(partial(requests_of, stage),
                                          batch_format="pyarrow").materialize()
                pending = requests.count()
                log.warning("%s: teacher %s: %d requests not in the cache", stage.name,
                            teacher.model, pending)
                progress.expect(stage.name, stage.teacher_key, teacher.model, pending)
                urls = endpoints.urls_for(teacher, pending)
                plan.ctx.endpoints[stage.name] = urls
                if pending:  # answered into the cache as one stream; the stage then reads it
                    plan.ctx.answered[stage.name] = answer_pending(
                        requests, pending, teacher, stage.name, plan.ctx.meters[stage.teacher_key],
                        urls, stage.configured_resources())
            # each stage's result is kept until the next one is: its time is its own
            ds = apply_stage(ds, stage, columns).materialize()
            lap(stage.name)
        ds = solid_blocks(solid_blocks(ds, schema_of(columns)).sort(list(ROW_KEY)),
                          schema_of(columns))
        tally, files = write_parts(ds, columns, out, cfg)
        report_spend(cfg, progress.close())
        lap("write")
    from pipeline.card import write_card  # matplotlib: on the driver only, at the end
    from pipeline.manifest import build_manifest

    order = ["collect"] + [s.name for s in plan.stages]
    summaries = {s.name: s.summary() for s in plan.stages}
    manifest = build_manifest(cfg, inputs, order, tally, files, command, summaries)
    with tempfile.TemporaryDirectory(prefix="rubricforge-meta-") as meta:
        (Path(meta) / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        write_card(Path(meta), manifest, tally, cfg)
        storage.upload_dir(Path(meta), out)
    if not manifest["balanced"]:
        raise StageContractError("row accounting does not add up; see manifest.json 'accounting'")
    return manifest, seconds
