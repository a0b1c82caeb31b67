"""Builds over many blocks: every grouped or shuffled stage sees sources spread over blocks
(`ray.block_rows=16`), some of them emptied by the stages before, as at full scale.

Hub-schema synthetic files for the three `rmr1` sources and the four benchmarks
(bench/scale_data.py), a loopback teacher for both passes. Each input row must be found in
exactly one output part, and a rebuild from the cache must write the same bytes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench import slow_api
from bench.scale_data import data_overrides, write_all
from pipeline.config import load_config
from stages.sources import get_source

from conftest import build
from fake_openai import FakeOpenAI

pytestmark = pytest.mark.e2e
SOURCES = ("skywork", "code_preference_pairs", "math_step_dpo")
BLOCK_ROWS = 16


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiblock")
    rows = write_all(root / "data", scale=0.005, files_per_source=2)
    assert all(n >= 3 * BLOCK_ROWS for n in rows.values())
    return root, rows


@pytest.fixture(scope="module")
def teacher():
    """Judges like a weak teacher (half right) and follows the pass-2 hint."""
    with FakeOpenAI(lambda body, n: (200, slow_api.answer(body, 50))) as server:
        yield server


def overrides(root: Path, url: str, sources: tuple[str, ...], out: str) -> list[str]:
    over = ["recipe=rmr1", f"ray.block_rows={BLOCK_ROWS}", f"output.dir={root / out}",
            *(o for o in data_overrides(root / "data")
              if not o.startswith("sources.") or o.split(".")[1] in sources),
            *(f"~source@sources.{s}" for s in SOURCES if s not in sources)]
    for key in ("teacher", "teacher2"):
        over += [f"{key}=openai", f"{key}.model=judge-{key}", f"{key}.base_url={url}",
                 f"{key}.cache_dir={root / 'cache'}", f"{key}.max_tokens=256"]
    return over


def pair_ids_by_row(root: Path, sources: tuple[str, ...]) -> dict[str, tuple[str, int]]:
    """pair_id -> (source, source_index) of every mapped input row, read by the sources' own
    code (kept rows carry their pair_id, not their index)."""
    cfg = load_config(overrides(root, "http://unused", sources, "x"))
    out = {}
    for name in sources:
        source = get_source(name)
        raw = source.raw_table(cfg.sources[name], use_sample=False)
        for r in source.map_batch(raw, cfg.sources[name]).to_pylist():
            out.setdefault(r["pair_id"], (name, r["source_index"]))
    return out


def every_row_once(out: Path, root: Path, sources: tuple[str, ...], rows: dict[str, int]) -> Counter:
    """Find each (source, source_index) in exactly one part; return the rows per part."""
    ids = pair_ids_by_row(root, sources)
    seen: Counter = Counter()
    per_part: Counter = Counter()
    for part in ("sft", "rl", "rejected", "quarantine", "deduplicated"):
        for f in sorted((out / part).glob("*.parquet")):
            t = pq.read_table(f).to_pylist()
            per_part[part] += len(t)
            for r in t:
                seen[(r["source"], r["source_index"]) if "source_index" in r else ids[r["pair_id"]]] += 1
    expected = {(s, i) for s in sources for i in range(rows[s])}
    assert set(seen) == expected and set(seen.values()) == {1}
    return per_part


@pytest.mark.parametrize("sources", [("code_preference_pairs",), SOURCES], ids=["one", "three"])
def test_a_build_over_many_blocks_accounts_for_every_row_and_rebuilds_the_same_bytes(
        data, teacher, sources):
    root, rows = data
    first = build(*overrides(root, teacher.base_url, sources, f"first-{len(sources)}"))
    assert first.returncode == 0, first.stdout[-4000:]
    out = root / f"first-{len(sources)}"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"] == {s: rows[s] for s in sources} and manifest["balanced"]
    per_part = every_row_once(out, root, sources, rows)
    assert per_part["rl"] > 0 and per_part["sft"] > 0 and per_part["deduplicated"] > 0
    stages = {s["stage"]: s for s in manifest["stages"]}
    assert stages["bootstrap"]["rows_in"] > 0
    if len(sources) == 1:
        return
    assert {r["reason"] for r in manifest["reasons"]} >= {"excluded_subset", "contaminated",
                                                          "exact_dup", "near_dup"}
    asked = len(teacher.requests)
    again = build(*overrides(root, teacher.base_url, sources, "again"))
    assert again.returncode == 0, again.stdout[-4000:]
    rebuilt = json.loads((root / "again" / "manifest.json").read_text())
    assert len(teacher.requests) == asked and rebuilt["teacher"]["requests"] == 0
    assert rebuilt["files"] == manifest["files"], "same config + same cache = the same shards"
