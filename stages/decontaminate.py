"""Remove training pairs whose prompt overlaps a reward benchmark's prompt.

A reward model trained on a benchmark's prompts scores better on it than it deserves (Skywork
v0.1 carried 4,957 RewardBench prompts). The benchmarks' prompts are read once on the driver
into an n-gram index, shared with the workers through Ray's object store, and every live
prompt is checked in parallel batches. A row that shares one n-gram (default 13 words) with a
benchmark prompt, or equals a prompt too short to have one, is rejected as `contaminated`,
with the benchmarks and the prompt ids it matched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import ray

from pipeline.engine.config import ConfigError
from pipeline.engine.reading import check_data_files
from pipeline.engine.schema import REJECTED
from pipeline.engine.stage import Stage, decide, set_rows
from pipeline.rules.ngrams import Match, NgramIndex
from stages.benchmarks import SAMPLES_DIR, benchmark_prompts

log = logging.getLogger("rubricforge")
BENCHMARKS = ["rewardbench", "rewardbench2", "rm_bench", "rmb"]


@dataclass(frozen=True)
class DecontaminateParams:
    # Words per n-gram: 13 is the usual choice (8 to 13 are common); fewer words catch more
    # paraphrases and more innocent overlaps.
    ngram: int = 13
    # Benchmarks to check against, by their name in conf/benchmark.
    benchmarks: list[str] = field(default_factory=lambda: list(BENCHMARKS))

    def check(self) -> str | None:
        return "ngram must be >= 1" if self.ngram < 1 else None


def _decision(matches: list[Match], n: int, stage: str) -> dict[str, Any]:
    if not matches:
        return {}
    detail = "; ".join(f"{m.benchmark} id {m.prompt_id}: "
                       + ("same prompt" if m.whole else f"{m.shared} shared {n}-grams")
                       for m in matches)
    return decide(REJECTED, "contaminated", stage, detail) | {
        "contaminated_by": [m.benchmark for m in matches]}


class Decontaminate(Stage):
    name = "decontaminate"
    inputs = ("prompt",)
    outputs = ("outcome", "reason", "detail", "decided_by", "contaminated_by")
    Params = DecontaminateParams

    def preflight(self) -> None:
        cfg = self.ctx.cfg
        for name in self.params.benchmarks:
            key = f"benchmarks.{name}"
            if name not in cfg.benchmarks:
                raise ConfigError(f"recipe.stages.decontaminate.benchmarks names "
                                  f"'{name}', which is not configured; known: "
                                  f"{', '.join(sorted(cfg.benchmarks))} (conf/benchmark/)")
            b = cfg.benchmarks[name]
            if b.data_files:  # read whatever the recipe
                check_data_files(key, b.data_files)
            elif cfg.recipe.use_samples:
                if not (SAMPLES_DIR / b.sample_file).exists():
                    raise ConfigError(f"{key}.sample_file: "
                                      f"{SAMPLES_DIR / b.sample_file} does not exist")
            elif not (b.hub_id or (b.url and b.files)):
                raise ConfigError(f"{key} has neither hub_id nor url and files: "
                                  f"set {key}.data_files to a local copy (see "
                                  f"conf/benchmark/{name}.yaml), or leave it out with "
                                  f"recipe.stages.decontaminate.benchmarks=[...]")

    def prepare(self) -> None:
        cfg = self.ctx.cfg
        prompts = {name: benchmark_prompts(cfg.benchmarks[name], cfg.recipe.use_samples)
                   for name in self.params.benchmarks}
        index = NgramIndex.build(self.params.ngram, prompts)
        for name, stats in index.stats.items():
            log.warning("decontaminate: %s: %d prompts, %d distinct %d-grams, %d shorter than "
                        "%d words (matched whole)", name, stats["prompts"], stats["ngrams"],
                        index.n, stats["shorter_than_n"], index.n)
        self._summary = {"ngram": index.n, "benchmarks": index.stats}
        self._index = ray.put(index)  # numpy arrays: each worker reads them in place

    def process(self, rows: pa.Table) -> pa.Table:
        index: NgramIndex = ray.get(self._index)
        found = index.matches_all(["\n".join(m["content"] for m in p)
                                   for p in rows.column("prompt").to_pylist()])
        # only the (few) rows that overlap get an update: the prompts are not converted twice
        return set_rows(rows, {i: _decision(m, index.n, self.name)
                               for i, m in enumerate(found) if m}, self.outputs)

    def summary(self) -> dict[str, Any]:
        return getattr(self, "_summary", {})
