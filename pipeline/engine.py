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
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray
from ray.data import DataContext, Dataset

from pipeline import storage
from pipeline.card import write_card
from pipeline.config import expand
from pipeline.local_server import LocalEngines
from pipeline.manifest import build_manifest
from pipeline.offline_engine import LIGHT_CPUS, answer_offline, request_table
from pipeline.plan import Plan
from pipeline.progress import TeacherProgress
from pipeline.ray_session import dataset_of, joined_cluster, ray_session, shuffle_partitions
from pipeline.schema import (
    ALIVE,
    CANONICAL_COLUMNS,
    REJECTED,
    conform,
)
from pipeline.spend import Meter
from pipeline.stage import Stage
from pipeline.writer import write_parts

log = logging.getLogger("rubricforge")

class StageContractError(RuntimeError):
    pass


def in_play(stage: Stage, batch: pa.Table) -> pa.Array:
    """The rows a stage gets: live ones, plus those rejected by a stage it reopens."""
    mask = pc.equal(batch.column("outcome"), ALIVE)
    if stage.reopens:
        taken_back = pc.and_(pc.equal(batch.column("outcome"), REJECTED),
                             pc.is_in(batch.column("decided_by"), pa.array(stage.reopens)))
        mask = pc.or_(mask, pc.fill_null(taken_back, False))
    return mask


def apply_to_batch(stage: Stage, columns: tuple[str, ...], batch: pa.Table) -> pa.Table:
    """Give the stage the rows in play; pass the others by; check what comes back."""
    mask = in_play(stage, batch)
    live, done = batch.filter(mask), batch.filter(pc.invert(mask))
    out = stage.process(live) if live.num_rows else live
    if out.num_rows != live.num_rows:
        raise StageContractError(f"stage '{stage.name}' returned {out.num_rows} rows for "
                                 f"{live.num_rows}: stages mark rows, they never drop them")
    missing = [c for c in stage.outputs if c not in out.column_names] if live.num_rows else []
    if missing:
        raise StageContractError(f"stage '{stage.name}' did not write its declared outputs {missing}")
    return pa.concat_tables([conform(out, columns), conform(done, columns)])


class _StageActor:
    """Holds one stage instance for stages that keep state (clients, engines) across batches."""

    def __init__(self, stage: Stage, columns: tuple[str, ...]) -> None:
        self.stage, self.columns = stage, columns

    def __call__(self, batch: pa.Table) -> pa.Table:
        return apply_to_batch(self.stage, self.columns, batch)


def _keep(stage: Stage, playing: bool, batch: pa.Table) -> pa.Table:
    mask = in_play(stage, batch)
    return batch.filter(mask if playing else pc.invert(mask))


def apply_stage(ds: Dataset, stage: Stage, columns: tuple[str, ...], batch_rows: int) -> Dataset:
    if stage.whole_dataset or stage.group_by:
        return _apply_to_live_set(ds, stage, columns)
    resources = stage.configured_resources()
    res = resources.ray_args()
    if resources.actors:
        return ds.map_batches(_StageActor, fn_constructor_args=(stage, columns),
                              compute=ray.data.ActorPoolStrategy(size=resources.actors),
                              batch_format="pyarrow", batch_size=batch_rows, **res)
    return ds.map_batches(partial(apply_to_batch, stage, columns), batch_format="pyarrow",
                          batch_size=batch_rows, **res)


def _apply_to_live_set(ds: Dataset, stage: Stage, columns: tuple[str, ...]) -> Dataset:
    """Stages that see many rows at once (groups, or everything) get the live rows as a set;
    decided rows go around them."""
    ds = ds.materialize()  # read twice below: once for live rows, once for decided ones
    live = ds.map_batches(partial(_keep, stage, True), batch_format="pyarrow").materialize()
    done = ds.map_batches(partial(_keep, stage, False), batch_format="pyarrow")
    done = done.map_batches(partial(conform, names=columns), batch_format="pyarrow")
    n_live = live.count()
    if n_live == 0:
        return done
    if stage.group_by:
        out = live.groupby(list(stage.group_by), num_partitions=shuffle_partitions()).map_groups(
            partial(apply_to_batch, stage, columns), batch_format="pyarrow",
            **stage.configured_resources().ray_args())
        return out.union(done)
    out = stage.process_dataset(live).map_batches(partial(conform, names=columns),
                                                  batch_format="pyarrow").materialize()
    n_out = out.count()
    if n_out != n_live:
        raise StageContractError(f"stage '{stage.name}' returned {n_out} rows for {n_live}: "
                                 "stages mark rows, they never drop them")
    return out.union(done)


def read_sources(plan: Plan, use_samples: bool) -> tuple[Dataset, dict[str, int]]:
    parts, inputs = [], {}
    for source, scfg in plan.sources:
        raw = source.raw_table(scfg, use_samples)
        inputs[source.name] = raw.num_rows
        log.warning("source %s: %d rows read", source.name, raw.num_rows)
        ds = dataset_of(raw).map_batches(
            lambda t, s=source, c=scfg: s.map_batch(t, c), batch_format="pyarrow")
        parts.append(ds)
    ds = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    return ds, inputs


def _pending(stage: Stage, batch: pa.Table) -> pa.Table:
    return pa.table({"n": [len(stage.uncached_requests(batch.filter(in_play(stage, batch))))]})


def _requests(stage: Stage, batch: pa.Table) -> pa.Table:
    return request_table(stage.uncached_requests(batch.filter(in_play(stage, batch))))


class Endpoints:
    """Teacher endpoints for the build: local servers are started the first time a stage has
    requests the cache cannot answer, and shared by every later stage that asks the same model."""

    def __init__(self, stack: contextlib.ExitStack, log_path: Path, on_cluster: bool) -> None:
        self.stack, self.log_path, self.on_cluster = stack, log_path, on_cluster
        self.local: dict[str, list[str]] = {}

    def urls_for(self, teacher: Any, pending: int) -> list[str] | None:
        if teacher.backend != "local":
            return [teacher.base_url] if teacher.base_url else None
        if teacher.model not in self.local and pending:
            log.warning("starting the local teacher (%d vLLM server(s), about a minute on CPU); "
                        "log: %s", teacher.replicas, self.log_path)
            self.local[teacher.model] = self.stack.enter_context(
                LocalEngines(teacher, self.log_path, self.on_cluster))
        return self.local.get(teacher.model)


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


def run_build(cfg: Any, plan: Plan, command: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """Build into a staging place beside `output.dir` (a path or fsspec URL) and put it in
    place only when everything is written; a failed build leaves the old output as it was."""
    final = storage.resolve(cfg.output.dir)
    staging = storage.staging_for(final)
    storage.remove_tree(staging)
    head, name = storage.parent_and_name(final)
    logs = Path(head) / "logs" if not storage.is_remote(final) else expand("~/.cache/rubricforge/logs")
    try:
        manifest = _build_into(cfg, plan, staging, logs / f"{name}-teacher.log", command)
        storage.commit(staging, final, last=("manifest.json", "README.md"))
    except BaseException:
        storage.remove_tree(staging)
        raise
    return manifest, final


def _build_into(cfg: Any, plan: Plan, out: str, teacher_log: Path,
                command: list[str] | None) -> dict[str, Any]:
    batch_rows = cfg.output.batch_rows
    with ray_session(cfg.ray), contextlib.ExitStack() as stack:
        DataContext.get_current().enable_progress_bars = sys.stderr.isatty()
        if not sys.stderr.isatty():  # no bars to draw: keep the log to what happened
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        ds, inputs = read_sources(plan, cfg.recipe.use_samples)
        columns: tuple[str, ...] = CANONICAL_COLUMNS
        endpoints = Endpoints(stack, teacher_log, on_cluster=joined_cluster(cfg.ray))
        plan.ctx.meters = start_meters(cfg, plan.stages)
        progress = TeacherProgress(plan.ctx.meters)
        stack.callback(progress.close)
        for stage, columns in zip(plan.stages, plan.columns_after, strict=True):
            teacher = stage.teacher_config()
            if teacher is not None:
                ds = ds.materialize()  # everything up to this stage, once
                if teacher.backend == "vllm":  # the requests themselves go to the engines
                    requests = ds.map_batches(partial(_requests, stage), batch_format="pyarrow",
                                              num_cpus=LIGHT_CPUS).materialize()
                    pending = requests.count()
                else:
                    pending = ds.map_batches(partial(_pending, stage),
                                             batch_format="pyarrow").sum("n") or 0
                log.warning("%s: teacher %s: %d requests not in the cache", stage.name,
                            teacher.model, pending)
                progress.expect(stage.name, stage.teacher_key, teacher.model, pending)
                if teacher.backend != "vllm":
                    plan.ctx.endpoints[stage.name] = endpoints.urls_for(teacher, pending)
                elif pending:  # the engines answer into the cache; the stage then reads it
                    plan.ctx.offline[stage.name] = answer_offline(
                        requests, pending, teacher, stage.name, plan.ctx.meters[stage.teacher_key])
            ds = apply_stage(ds, stage, columns, batch_rows)
        ds = ds.sort(["source", "source_index"])
        tally, files = write_parts(ds, columns, out, cfg)
        report_spend(cfg, progress.close())
    order = ["collect"] + [s.name for s in plan.stages]
    summaries = {s.name: s.summary() for s in plan.stages}
    manifest = build_manifest(cfg, inputs, order, tally, files, command, summaries)
    with tempfile.TemporaryDirectory(prefix="rubricforge-meta-") as meta:
        (Path(meta) / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        write_card(Path(meta), manifest, tally, cfg)
        storage.upload_dir(Path(meta), out)
    if not manifest["balanced"]:
        raise StageContractError("row accounting does not add up; see manifest.json 'accounting'")
    return manifest
