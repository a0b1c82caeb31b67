"""`rubricforge sources`: what can be built from, and whether each source is complete."""

from __future__ import annotations

from omegaconf import OmegaConf

from pipeline.engine.config import CONF_DIR, ConfigError, SourceConfig
from pipeline.output.card import CARDS_DIR
from pipeline.plan import checked_source
from stages.sources import registry
from stages.sources.base import SAMPLES_DIR


def sources_table() -> str:
    """One line per source module: Hub id, license, rows, sample rows, and what is missing."""
    rows = [("name", "hub id", "license", "rows", "sample rows", "status")]
    for name in sorted(registry()):
        yaml = CONF_DIR / "source" / f"{name}.yaml"
        missing = [] if yaml.exists() else [f"conf/source/{name}.yaml"]
        if not (CARDS_DIR / "sources" / f"{name}.md").exists():
            missing.append(f"data_cards/sources/{name}.md")
        cfg = None
        if yaml.exists():
            try:
                cfg = OmegaConf.merge(OmegaConf.structured(SourceConfig), OmegaConf.load(yaml))
                OmegaConf.to_object(cfg)  # a mandatory value left unset
            except Exception as exc:  # omegaconf raises many kinds; all are a broken file here
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                rows.append((name, "?", "?", "?", "-", f"conf/source/{name}.yaml: {first}"))
                continue
        if cfg is not None:
            sample = SAMPLES_DIR / cfg.sample_file
            sample_rows = sum(1 for _ in sample.open()) if sample.exists() else "-"
            if not sample.exists():
                missing.append(f"stages/sources/samples/{cfg.sample_file}")
            status = "ok" if not missing else "missing " + ", ".join(missing)
            if not missing:  # what a build's plan checks, with the shipped sample
                try:
                    checked_source(name, cfg, use_samples=True)
                except ConfigError as exc:
                    status = exc.line
            rows.append((name, cfg.hub_id or "- (files only)", cfg.license,
                         f"{cfg.rows:,}" if cfg.rows else "?", str(sample_rows), status))
        else:
            rows.append((name, "?", "?", "?", "-", "missing " + ", ".join(missing)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("\nuse one in a build: rubricforge build +source@sources.<name>=<name>")
    return "\n".join(lines)
