"""Typed configuration: Hydra composes `conf/` (pipeline/settings.py), these dataclasses
reject typos and bad values; each teacher backend declares its own settings.

Every check runs before Ray starts or a teacher is called, so a mistake costs nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def shipped(folder: str) -> Path:
    """A folder rubricforge ships (`conf`, `data_cards`): inside the installed `pipeline` package
    (the wheel puts it there), else at the top of the checkout it runs from."""
    package = Path(__file__).resolve().parents[1]
    inside = package / folder
    return inside if inside.is_dir() else package.parent / folder


CONF_DIR = shipped("conf")


class ConfigError(ValueError):
    """A bad setting: one line that names the key and what to do (`line`), shown after its
    prefix: `config error: <line>`."""

    prefix = "config error"

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line

    def __str__(self) -> str:
        return f"{self.prefix}: {self.line}"


class RunError(RuntimeError):
    """Something outside the settings stopped a run (an input that cannot be read, a local
    model or server that will not start, a refused upload): one line that says what to do."""


@dataclass
class SourceConfig:
    name: str = "???"
    # The Hub dataset; null for a source that only comes as files (then set data_files).
    hub_id: str | None = None
    revision: str = "main"
    subset: str | None = None
    # A folder of the Hub repository (HH-RLHF's `harmless-base`): parts published as folders,
    # not as configs. Read with hub_id; a local copy of the repository works as hub_id too.
    data_dir: str | None = None
    split: str = "train"
    license: str = "???"
    # Rows as published (for `rubricforge sources`; the build counts what it reads).
    rows: int | None = None
    sample_file: str = "???"
    data_files: str | None = None
    shuffle_seed: int | None = None
    limit: int | None = None
    exclude_subsets: list[str] = field(default_factory=list)
    # The source's own settings, checked against its module's `Params` (e.g. a score margin).
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchmarkConfig:
    """A reward benchmark whose prompts must not be trained on (decontamination)."""

    name: str = "???"
    # The Hub dataset, or null for a benchmark published elsewhere (then `url` and `files`).
    hub_id: str | None = None
    revision: str = "main"
    subset: str | None = None
    split: str = "train"
    # Published outside the Hub (RMB on GitHub): `files` (paths) under `url`, a base URL that
    # pins a commit, read through `datasets` (and its download cache) like the Hub.
    url: str | None = None
    files: list[str] = field(default_factory=list)
    # Local copies instead (a glob), read whatever the recipe.
    data_files: str | None = None
    sample_file: str = "???"
    # The column holding the prompt: a string, or a list of {role, content} turns.
    prompt_field: str = "prompt"
    # The column naming a prompt in reports; null: its row number.
    id_field: str | None = "id"


@dataclass
class OutputConfig:
    dir: str = "build/${recipe.name}"
    shard_max_mb: int = 256
    batch_rows: int = 256


@dataclass
class PromptConfig:
    system: str = "???"
    single_turn: str = "???"
    multi_turn: str = "???"
    hint: str = "???"
    # `rubricforge eval` on RewardBench 2: four answers at once, or one answer rated 1-10
    best_of_four_system: str = "???"
    best_of_four: str = "???"
    rating_system: str = "???"
    rating: str = "???"
    rating_criteria: str = "???"
    rating_criteria_ties: str = "???"
    # The lowest share of a quote's words, in order, that must be in the answer it cites: the
    # trace checks' line between a quote typed loosely and invented evidence
    # (pipeline/rules/quotes.py; calibrated in bench/trace_checks.py).
    min_quote_fidelity: float = 0.7


@dataclass
class RecipeConfig:
    name: str = "???"
    use_samples: bool = False
    # Which source keeps a pair when several hold duplicates: listed first wins; unlisted
    # sources follow by name; ties go to the smaller pair_id.
    source_priority: list[str] = field(default_factory=list)
    stages: dict[str, dict[str, Any] | None] = field(default_factory=dict)


@dataclass
class PublishConfig:
    # Hub dataset id (org/name) to publish to when the build succeeds; null: do not publish.
    repo: str | None = None
    private: bool = False
    revision: str | None = None


@dataclass
class RayConfig:
    address: str | None = None
    num_cpus: int | None = None
    # Rows per block when a source is read: a unit of work (and of memory) for every stage;
    # null: about two blocks per CPU, of 4,096 to 16,384 rows (pipeline/engine/ray_session.py).
    block_rows: int | None = None


@dataclass
class EvalConfig:
    """`rubricforge eval`: which benchmarks, how much of each, in which orders."""

    benchmarks: list[str] = field(default_factory=lambda: ["rewardbench", "rm_bench", "rmb",
                                                           "rmb_bon", "rewardbench2"])
    # Items per subset (the first N in the benchmark's order); null: all.
    limit: int | None = None
    # The score follows the published protocol: one judgement per comparison, the A/B placement
    # drawn from `seed`. true: also ask each comparison the other way round, for the stricter
    # both-orders figure and the swap agreement (the drawn order's answers are reused).
    both_orders: bool = False
    # How RewardBench 2 is asked: best_of_four (its leaderboard's protocol for a generative
    # judge: four answers at once for five subsets, Ties rated), ratings (every answer rated
    # 1-10 alone) or pairwise (three comparisons per item, for judges trained only on pairs; no
    # Ties, so no RewardBench 2 score).
    rb2_protocol: str = "best_of_four"
    # The shipped samples instead of the benchmarks (offline tries and tests).
    use_samples: bool = False
    # Where eval.json, eval.md (with eval.png) and judgements.parquet go.
    output_dir: str = "build/eval"


@dataclass
class RootConfig:
    seed: int = 0
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    benchmarks: dict[str, BenchmarkConfig] = field(default_factory=dict)
    # The teachers' settings: each backend declares its own (pipeline/teachers/backends/), and
    # pipeline/settings.py checks them against it.
    teacher: Any = field(default_factory=dict)
    # Pass 2 (bootstrap): asked again, with the correct verdict, for pairs pass 1 got wrong.
    teacher2: Any = field(default_factory=dict)
    # A second opinion on labels (the label_audit stage), asked the unhinted prompt: `+audit=openai
    # audit.model=...`; unset, label_audit asks the pass-1 teacher with A and B swapped.
    audit: Any = None
    prompt: PromptConfig = field(default_factory=PromptConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def expand(path: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(path)))
