"""Typed configuration: Hydra composes `conf/`, these dataclasses reject typos and bad values.

Every check here runs before Ray starts or a teacher is called, so a mistake costs nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


class ConfigError(ValueError):
    """A bad setting; the message is one line that names the key and what to do."""


@dataclass
class SourceConfig:
    name: str = "???"
    # The Hub dataset; null for a source that only comes as files (then set data_files).
    hub_id: str | None = None
    revision: str = "main"
    subset: str | None = None
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
class TeacherConfig:
    backend: str = "local"
    model: str = "???"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_tokens: int = 1024
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    concurrency: int = 16
    # The provider's limits for this key, shared by every worker of the build (null: none).
    rpm: float | None = None
    tpm: float | None = None
    timeout_s: float = 300.0
    max_attempts: int = 3
    # Constrain decoding to the trace grammar (vLLM servers only): lets small models keep the
    # layout while they still choose the words and the verdict.
    guided_format: bool = False
    # USD per million tokens, for `build --estimate` (null: unknown; the local model costs 0).
    price_input_per_mtok: float | None = None
    price_output_per_mtok: float | None = None
    # Stop sending new requests before this build's calls to this teacher pass this many USD
    # (null: no cap); needs both prices. Rows not asked are rejected as `cost_cap`.
    max_cost_usd: float | None = None
    # Hugging Face tokenizer (Hub id or directory) that counts prompt tokens for the TPM budget,
    # the cost cap and `--estimate`; null: characters / 4 (the local teacher uses its own).
    tokenizer: str | None = None
    cache_dir: str = "~/.cache/rubricforge/teacher"
    # Only for backend=openai_batch: seconds between polls of a batch job.
    batch_poll_s: float = 30.0
    # Only for backend=local: the embedded vLLM server.
    startup_timeout_s: float = 600.0
    max_model_len: int = 4096
    kv_cache_gib: int = 1
    model_dir: str = "~/.cache/rubricforge/models"
    # A Hugging Face checkpoint (directory or Hub id) to serve instead of the embedded model.
    checkpoint: str | None = None
    # Servers (Ray actors), GPUs each reserves, and the tensor-parallel size of each.
    replicas: int = 1
    num_gpus: float = 0.0
    tensor_parallel_size: int = 1


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
    # Rows per block when a source is read: a unit of work (and of memory) for every stage.
    block_rows: int = 4096


@dataclass
class RootConfig:
    seed: int = 0
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    benchmarks: dict[str, BenchmarkConfig] = field(default_factory=dict)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    # Pass 2 (bootstrap): asked again, with the correct verdict, for pairs pass 1 got wrong.
    teacher2: TeacherConfig = field(default_factory=TeacherConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    ray: RayConfig = field(default_factory=RayConfig)


def _one_line(exc: Exception) -> str:
    """Hydra and OmegaConf spread a message over lines; say it in one, naming the key."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    head = lines[0] if lines else type(exc).__name__
    key = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("full_key:")), None)
    if m := re.match(r"Could not override '([^']+)'", head):
        return f"unknown key '{m.group(1)}': check its spelling (--show-config lists every key)"
    if m := re.match(r"In '[^']*': Could not find '([^/']+)/([^']+)'", head):
        options = [ln for ln in lines[1:] if not ln.startswith(("Available", "Config", "provider"))]
        return (f"{m.group(1)}={m.group(2)}: no such option; options: {', '.join(options)}")
    if type(exc).__name__ == "MissingMandatoryValue" and key:
        return f"{key} must be set: add {key}=<value>"
    return f"{head} (key: {key})" if key and key not in head else head


def _drop_removed_sources(raw: DictConfig, overrides: list[str]) -> None:
    """`~source@sources.X` removes a source in one override: a recipe's own settings for X
    (`limit`, `shuffle_seed`) go with it. Settings for a source that was never added are a
    mistake, said in one line."""
    removed = {m.group(1) for o in overrides
               if (m := re.fullmatch(r"~source@sources\.([\w-]+)(=.*)?", o))}
    with open_dict(raw):
        for name in list(raw.get("sources") or {}):
            if "name" in raw.sources[name]:
                continue
            if name in removed:
                del raw.sources[name]
                continue
            keys = ", ".join(sorted(raw.sources[name]))
            raise ConfigError(f"config error: sources.{name} has settings ({keys}) but is not a "
                              f"source of this recipe: add +source@sources.{name}=<source> "
                              "(`rubricforge sources` lists them), or drop the settings")


def load_config(overrides: list[str] | None = None) -> DictConfig:
    """Compose `conf/` with command-line overrides and check it against the schema."""
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            raw = compose("config", overrides=list(overrides or []))
        _drop_removed_sources(raw, list(overrides or []))
        cfg = OmegaConf.merge(OmegaConf.structured(RootConfig), raw)
        OmegaConf.resolve(cfg)
        OmegaConf.to_object(cfg)  # raises on missing mandatory values ('???')
    except ConfigError:
        raise
    except Exception as exc:  # hydra/omegaconf raise many kinds; all are config mistakes here
        raise ConfigError(f"config error: {_one_line(exc)}; see `rubricforge build --help`") from None
    OmegaConf.set_readonly(cfg, True)
    return cfg


def expand(path: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(path)))
