"""Reading a published dataset through `datasets`: from the Hub, from local files, or from the
small schema-exact sample that ships with rubricforge. Sources and benchmarks share it."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import datasets

from pipeline.config import ConfigError


class InputLoadError(RuntimeError):
    """A dataset that cannot be read at all; the message says which and what to do."""


def read_dataset(key: str, cfg: Any, sample: Path | None,
                 features: datasets.Features | None = None) -> datasets.Dataset:
    """One split of the dataset `cfg` describes (hub_id, revision, subset, split, data_files).

    `key` is where it is configured (`sources.skywork`), for the error message. `data_files`,
    when set, are read whatever the recipe; else `sample`, when given, instead of the Hub.
    """
    if cfg.data_files:
        path, kwargs, split = builder_for(cfg.data_files), {"data_files": cfg.data_files}, "train"
        where = f"{key}.data_files={cfg.data_files}"
    elif sample is not None:
        path, kwargs, split = "json", {"data_files": str(sample)}, "train"
        where = f"sample file {sample}"
    elif cfg.hub_id:
        path, kwargs, split = cfg.hub_id, {"name": cfg.subset, "revision": cfg.revision}, cfg.split
        where = f"Hub dataset {cfg.hub_id}@{cfg.revision}"
    else:
        raise InputLoadError(f"{key}: neither hub_id nor data_files is set; set one of them")
    try:
        return datasets.load_dataset(path, split=split, features=features, **kwargs)
    except Exception as exc:  # datasets raises many kinds; the user needs one clear line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Offline mode" in msg and "://" in str(cfg.data_files or ""):
            raise InputLoadError(f"{key}: cannot read {where}: `datasets` is in offline mode; "
                                 f"set HF_DATASETS_OFFLINE=0 to read remote files") from None
        raise InputLoadError(
            f"{key}: cannot read {where}: {msg}. Download it first, or point {key}.data_files "
            f"at local parquet/json files."
        ) from None


def check_data_files(key: str, data_files: str) -> None:
    """Before any work: local `data_files` must match a file (remote URLs are read later)."""
    if "://" not in data_files and not glob.glob(data_files, recursive=True):
        raise ConfigError(f"config error: {key}.data_files={data_files} matches no file; "
                          "download the data there first, or fix the path")


def builder_for(data_files: str) -> str:
    """The `datasets` builder for local files, from their extension."""
    suffix = Path(str(data_files).rstrip("*")).suffix.lower()
    return {".jsonl": "json", ".json": "json", ".csv": "csv"}.get(suffix, "parquet")
