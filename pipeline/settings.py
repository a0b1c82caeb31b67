"""Compose `conf/` with the command line into one checked, read-only config.

Hydra composes; the dataclasses of pipeline/engine/config.py check every key and type; each
teacher setting (`teacher`, `teacher2`) is checked against the settings its backend declares
(pipeline/teachers/backends/). Every mistake is one line naming the key, before any work.
"""

from __future__ import annotations

import logging
import re

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

from pipeline.engine.config import CONF_DIR, ConfigError, RootConfig
from pipeline.teachers.backends import check_backend, renamed

TEACHER_KEYS = ("teacher", "teacher2", "audit")
log = logging.getLogger("rubricforge")


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
            raise ConfigError(f"sources.{name} has settings ({keys}) but is not a "
                              f"source of this recipe: add +source@sources.{name}=<source> "
                              "(`rubricforge sources` lists them), or drop the settings")


def _typed_teachers(cfg: DictConfig) -> None:
    """Each teacher setting as its backend's own config class (unknown keys rejected)."""
    for key in TEACHER_KEYS:
        node = cfg.get(key)
        if node is None:  # `audit` is optional
            continue
        new = renamed().get(node.backend)
        if new is not None:
            log.warning("%s: backend '%s' is now called '%s' (%s=%s): the old name still works",
                        key, node.backend, new, key, new)
            node.backend = new
        config_cls = check_backend(key, node).Config
        backend = node.backend
        extra = sorted(set(node) - set(config_cls.__dataclass_fields__))
        if extra:
            raise ConfigError(f"{key}.{extra[0]} is not a setting of {key}={backend} "
                              f"(conf/teacher/{backend}.yaml lists them): remove it")
        try:
            typed = OmegaConf.merge(OmegaConf.structured(config_cls), node)
        except Exception as exc:  # a bad value: the key it names is inside this setting
            line = re.sub(r"\(key: ([^)]+)\)$", rf"(key: {key}.\1)", _one_line(exc))
            raise ConfigError(f"{line}; see `rubricforge build --help`") from None
        with open_dict(cfg):
            cfg[key] = typed


def load_config(overrides: list[str] | None = None) -> DictConfig:
    """Compose `conf/` with command-line overrides and check it against the schema."""
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            raw = compose("config", overrides=list(overrides or []))
        _drop_removed_sources(raw, list(overrides or []))
        cfg = OmegaConf.merge(OmegaConf.structured(RootConfig), raw)
        _typed_teachers(cfg)
        OmegaConf.resolve(cfg)
        OmegaConf.to_object(cfg)  # raises on missing mandatory values ('???')
    except ConfigError:
        raise
    except Exception as exc:  # hydra/omegaconf raise many kinds; all are config mistakes here
        raise ConfigError(f"{_one_line(exc)}; see `rubricforge build --help`") from None
    OmegaConf.set_readonly(cfg, True)
    return cfg

