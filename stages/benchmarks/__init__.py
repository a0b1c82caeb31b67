"""The prompts of the reward benchmarks, read through `datasets` like the sources.

A benchmark is one YAML in `conf/benchmark/` (where it is published, which column holds the
prompt) and one schema-exact sample in `samples/` for offline builds and tests. The prompt
column may hold a string, a list of strings, or a list of {role, content} turns.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.engine.reading import InputLoadError, read_dataset

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


def prompt_text(value: Any) -> str:
    """A benchmark prompt as plain text: the turns' contents, one per line."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("content") or "")
    if isinstance(value, list):
        return "\n".join(prompt_text(v) for v in value)
    return ""


def benchmark_prompts(cfg: Any, use_sample: bool) -> Iterator[tuple[str, str]]:
    """(prompt id, prompt text) for every row of the benchmark."""
    key = f"benchmarks.{cfg.name}"
    ds = read_dataset(key, cfg, SAMPLES_DIR / cfg.sample_file if use_sample else None)
    for column in (cfg.prompt_field, cfg.id_field):
        if column is not None and column not in ds.column_names:
            raise InputLoadError(f"{key}: no column '{column}' (columns: "
                                 f"{', '.join(ds.column_names)}); set {key}.prompt_field/id_field")
    columns = [c for c in (cfg.prompt_field, cfg.id_field) if c is not None]
    for i, row in enumerate(ds.select_columns(columns)):
        yield str(row[cfg.id_field] if cfg.id_field else i), prompt_text(row[cfg.prompt_field])
