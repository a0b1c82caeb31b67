"""Run a plan on Ray Data: sources, then each stage in order, then the sorted rows into shards.

Before a stage that asks a teacher, its requests the cache cannot answer are answered into the
cache (pipeline/teachers/runtime.py: as one stream, or in chains through the teacher stages that
follow it); the stage then reads the cache. The
output is written to a temporary directory that replaces `output.dir` only when everything is
written.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ray.data import DataContext, Dataset

from pipeline.engine import storage
from pipeline.engine.batches import StageContractError
from pipeline.engine.config import expand
from pipeline.engine.provenance import READ_METADATA
from pipeline.engine.ray_session import dataset_of, joined_cluster, ray_session, rows_per_block
from pipeline.engine.runner import Ahead, apply_stage
from pipeline.engine.terminal import others_to_log, step_line
from pipeline.output.writer import write_parts
from pipeline.plan import Plan
from pipeline.teachers.chains import chain_spans
from pipeline.teachers.runtime import TeacherRuntime
from pipeline.teachers.stage import TeacherStage

log = logging.getLogger("rubricforge")


def read_sources(plan: Plan, use_samples: bool, block_rows: int | None
                 ) -> tuple[Dataset, dict[str, int], dict[str, Any]]:
    """Every source's rows as one dataset, the raw rows per source, and what each read."""
    parts, inputs, raws, read = [], {}, [], {}
    for source, scfg in plan.sources:
        raw = source.raw_table(scfg, use_samples)
        inputs[source.name] = raw.num_rows
        read[source.name] = json.loads((raw.schema.metadata or {})[READ_METADATA.encode()])
        log.warning("source %s: %d rows read", source.name, raw.num_rows)
        raws.append(raw)
    per_block = rows_per_block(sum(inputs.values()), block_rows)
    for (source, scfg), raw in zip(plan.sources, raws, strict=True):
        ds = dataset_of(raw, per_block).map_batches(
            lambda t, s=source, c=scfg: s.map_batch(t, c), batch_format="pyarrow")
        parts.append(ds)
    ds = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    return ds, inputs, read


def log_file(cfg: Any, kind: str) -> Path:
    """`<name>-<kind>` of a build's logs: in `logs/` beside its output (a remote output: in the
    user's cache), named after the output's folder."""
    head, name = storage.parent_and_name(storage.resolve(cfg.output.dir))
    logs = expand("~/.cache/rubricforge/logs") if storage.is_remote(head) else Path(head) / "logs"
    return logs / f"{name}-{kind}"


def run_build(cfg: Any, plan: Plan, command: list[str] | None = None
              ) -> tuple[dict[str, Any], str, dict[str, float]]:
    """Build into a staging place beside `output.dir` (a path or fsspec URL) and put it in
    place only when everything is written; a failed build leaves the old output as it was.
    Returns the manifest, where the output is, and each step's seconds (also written to
    `logs/<name>-stages.json`: facts about the run, not the data, so not in the manifest)."""
    final = storage.resolve(cfg.output.dir)
    staging = storage.staging_for(final)
    storage.remove_tree(staging)
    steps = log_file(cfg, "stages.json")
    try:
        last = json.loads(steps.read_text())["seconds"]
    except (OSError, ValueError, KeyError):
        last = {}
    try:
        with others_to_log(log_file(cfg, "build.log")) as terminal:
            log.warning("Ray, vLLM and datasets write to %s", log_file(cfg, "build.log"))
            manifest, seconds = _build_into(cfg, plan, staging, log_file(cfg, "teacher.log"),
                                            command, terminal, last)
        storage.commit(staging, final, last=("manifest.json", "README.md"))
    except BaseException:
        storage.remove_tree(staging)
        raise
    steps.parent.mkdir(parents=True, exist_ok=True)
    steps.write_text(json.dumps({"seconds": seconds}, indent=2) + "\n")
    return manifest, final, seconds


def _build_into(cfg: Any, plan: Plan, out: str, teacher_log: Path, command: list[str] | None,
                terminal: TextIO, last: dict[str, float]) -> tuple[dict[str, Any], dict[str, float]]:
    """`last`: each step's seconds in the last build of this output (for the step line's ETA)."""
    seconds: dict[str, float] = {}
    clock = time.monotonic()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.monotonic()
        seconds[step] = round(now - clock, 2)
        clock = now
        log.warning("%s: done in %.1fs", step, seconds[step])

    with ray_session(cfg.ray), contextlib.ExitStack() as stack:
        # one progress display, rubricforge's: Ray Data's own bars would go to the log file
        DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ds, inputs, read = read_sources(plan, cfg.recipe.use_samples, cfg.ray.block_rows)
        # Steps not yet run: consecutive row stages run as one pass over each block (Ray Data
        # fuses their maps), so a copy of the rows is stored only where a stage must read its
        # input more than once. Their time is reported together.
        unrun = ["collect"]

        def run_steps(ds: Dataset) -> Dataset:
            step = " + ".join(unrun)
            with step_line(terminal, step, last.get(step)) if step else contextlib.nullcontext():
                ds = ds.materialize()
            if unrun:
                lap(step)
                unrun.clear()
            return ds

        teachers = TeacherRuntime(cfg, [s.teacher_key for s in plan.stages
                                        if isinstance(s, TeacherStage)],
                                  stack, teacher_log, joined_cluster(cfg.ray), terminal)
        plan.ctx.meters = teachers.meters
        spans = chain_spans(plan.stages, plan.columns_before)
        teacher_at = [i for i, s in enumerate(plan.stages) if isinstance(s, TeacherStage)]
        # the stages after the first teacher stage that can work ahead do, on its input, while
        # the teachers are answering (started only if something is sent)
        later = [s for s in plan.stages[teacher_at[0] + 1:] if s.works_ahead] if teacher_at else []
        ahead: list[Ahead] = []
        for stage, columns in zip(plan.stages, plan.columns_after, strict=True):
            if isinstance(stage, TeacherStage) or not stage.is_row_stage:
                # its input is read more than once (a teacher stage's requests, then the
                # stage; a group stage's light columns, then the rows): stored once
                ds = run_steps(ds)
                # Ray Data datasets hold themselves in reference cycles: uncollected, the
                # copies of earlier steps stay in the object store (and on its spill disk)
                # until Python happens to collect, which at 1M rows is too late
                gc.collect()
            if isinstance(stage, TeacherStage):  # answered into the cache; the stage reads it
                @contextlib.contextmanager
                def work_ahead(ds: Dataset = ds) -> Iterator[None]:
                    if later:
                        ahead.append(Ahead(ds, list(later)))
                        later.clear()
                    for work in ahead:
                        work.waiting_on_teachers(True)
                    try:
                        yield
                    finally:
                        for work in ahead:
                            work.waiting_on_teachers(False)

                teachers.before_stage(ds, stage, spans.get(stage.name),
                                      work_ahead if later or ahead else None)
            for work in ahead:
                work.finish(stage.name)
            ds = apply_stage(ds, stage, columns)
            unrun.append(stage.name)
        ds = run_steps(ds)
        gc.collect()
        with step_line(terminal, "write", last.get("write")):
            tally, files = write_parts(ds, plan.final_columns, out, cfg, plan.stages,
                                       plan.run_only_columns)
        teachers.close()
        lap("write")
    from pipeline.output.card import write_card  # matplotlib: on the driver only, at the end
    from pipeline.output.manifest import build_manifest

    order = ["collect"] + [s.name for s in plan.stages]
    summaries = {s.name: s.summary() for s in plan.stages}
    added = {source: (s.name, keys) for s in plan.stages if s.adds_rows
             for source, keys in s.added_keys.items()}
    manifest = build_manifest(cfg, inputs, order, tally, files, command, summaries, read, added)
    with tempfile.TemporaryDirectory(prefix="rubricforge-meta-") as meta:
        (Path(meta) / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        write_card(Path(meta), manifest, tally, cfg)
        storage.upload_dir(Path(meta), out)
    if not manifest["balanced"]:
        raise StageContractError("row accounting does not add up; see manifest.json 'accounting'")
    return manifest, seconds
