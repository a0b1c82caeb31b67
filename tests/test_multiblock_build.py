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
from pipeline.rules.keys import normalize
from pipeline.settings import load_config
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


def pair_ids_by_row(root: Path, sources: tuple[str, ...]) -> dict[str, list[tuple[str, int]]]:
    """pair_id -> the (source, source_index) of every mapped input row with that id (a pair
    repeated whole has one id for several rows), read by the sources' own code: kept rows carry
    their pair_id, not their index."""
    cfg = load_config(overrides(root, "http://unused", sources, "x"))
    out: dict[str, list[tuple[str, int]]] = {}
    for name in sources:
        source = get_source(name)
        raw = source.raw_table(cfg.sources[name], use_sample=False)
        for r in source.map_batch(raw, cfg.sources[name]).to_pylist():
            out.setdefault(r["pair_id"], []).append((name, r["source_index"]))
    return out


def every_row_once(out: Path, root: Path, sources: tuple[str, ...], rows: dict[str, int]) -> Counter:
    """Find each (source, source_index) in exactly one part; return the rows per part. Parts
    whose rows carry their index come first; a kept row then takes a row of its pair_id not
    yet found."""
    ids = pair_ids_by_row(root, sources)
    seen: Counter = Counter()
    per_part: Counter = Counter()
    for part in ("rejected", "quarantine", "deduplicated", "sft", "rl"):
        for f in sorted((out / part).glob("*.parquet")):
            t = pq.read_table(f).to_pylist()
            per_part[part] += len(t)
            for r in t:
                if "source_index" in r:
                    seen[(r["source"], r["source_index"])] += 1
                else:
                    rows_of = ids[r["pair_id"]]
                    seen[next((k for k in rows_of if k not in seen), rows_of[0])] += 1
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
                                                          "exact_dup"}
    # exact and near-duplicate prompts with other answers are kept, grouped for the split
    assert stages["exact_dedup"]["summary"]["prompt_groups_of_several_pairs"] > 0
    assert stages["near_dedup"]["summary"]["prompt_groups_joined"] > 0
    asked = len(teacher.requests)
    again = build(*overrides(root, teacher.base_url, sources, "again"))
    assert again.returncode == 0, again.stdout[-4000:]
    rebuilt = json.loads((root / "again" / "manifest.json").read_text())
    assert len(teacher.requests) == asked and rebuilt["teacher"]["requests"] == 0
    assert rebuilt["files"] == manifest["files"], "same config + same cache = the same shards"


def test_multi_pair_sources_keep_every_pair_and_never_put_a_prompt_on_both_sides(
        tmp_path, teacher):
    """The shipped samples plus the two newer sources (UltraFeedback: up to six pairs per row;
    Tulu 3: repeated prompts). Every (source, row, pair) lands in exactly one part, pairs that
    share a prompt are kept, and no prompt is in both `sft` and `rl`. With the swap check and
    position balance on, a pair judged right in both orders gives two SFT rows (A and B), and
    each source's SFT verdicts are balanced within one row."""
    new = ("ultrafeedback", "tulu3_preference")
    over = [f"output.dir={tmp_path / 'out'}", f"ray.block_rows={BLOCK_ROWS}",
            *(f"+source@sources.{s}={s}" for s in new), "recipe.stages.swap_consistency={}",
            "recipe.stages.balance_positions={}"]
    for key in ("teacher", "teacher2"):
        over += [f"{key}=openai", f"{key}.model=judge-{key}", f"{key}.base_url={teacher.base_url}",
                 f"{key}.cache_dir={tmp_path / 'cache'}", f"{key}.max_tokens=256"]
    done = build(*over)
    assert done.returncode == 0, done.stdout[-4000:]
    cfg = load_config(over)
    by_id: dict[str, list[tuple]] = {}  # pair_id -> its rows (same texts, same id)
    prompts: dict[str, str] = {}
    for name in cfg.sources:
        source = get_source(name)
        for r in source.map_batch(source.raw_table(cfg.sources[name], True),
                                  cfg.sources[name]).to_pylist():
            by_id.setdefault(r["pair_id"], []).append((name, r["source_index"], r["pair_index"]))
            if r["prompt"]:
                prompts[r["pair_id"]] = normalize("\n".join(m["content"] for m in r["prompt"]))
    seen: Counter = Counter()
    side: dict[str, set[str]] = {}
    verdicts: Counter = Counter()  # SFT rows per (source, winner)
    second_rows, sft_rows, previous = 0, 0, None
    # every row names its raw row and pair (sft and rl too): the second SFT row of a pair kept
    # in both orders is the same pair, swapped
    for part in ("rejected", "quarantine", "deduplicated", "sft", "rl"):
        for f in sorted((tmp_path / "out" / part).glob("*.parquet")):
            for r in pq.read_table(f).to_pylist():
                if part == "sft":
                    sft_rows += 1
                    verdicts[(r["source"], r["winner"])] += 1
                    if previous and previous["pair_id"] == r["pair_id"]:  # the same pair, swapped
                        assert r["winner"] != previous["winner"]
                        assert r["context_messages"] != previous["context_messages"]
                        assert (r["source_index"], r["pair_index"]) == (
                            previous["source_index"], previous["pair_index"])
                        second_rows += 1
                        previous = None
                        continue
                    previous = r
                key = (r["source"], r["source_index"], r["pair_index"])
                seen[key] += 1
                if part in ("sft", "rl"):
                    assert key in by_id[r["pair_id"]], "the row leads back to its raw row"
                    side.setdefault(prompts[r["pair_id"]], set()).add(part)
    assert set(seen) == {k for keys in by_id.values() for k in keys}
    assert set(seen.values()) == {1}
    assert all(len(parts) == 1 for parts in side.values()), "a prompt in both sft and rl"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    uf = manifest["accounting"]["ultrafeedback"]
    assert manifest["balanced"] and uf["input_rows"] == 31
    assert uf["pairs"] == len([k for keys in by_id.values() for k in keys
                               if k[0] == "ultrafeedback"])
    kept = uf.get("kept_sft", 0) + uf.get("kept_rl", 0)
    assert kept > uf["input_rows"], "several pairs per instruction are kept"
    assert ("ultrafeedback", "tie") in {(r["source"], r["reason"]) for r in manifest["reasons"]}
    assert second_rows > 0 and manifest["sft_rows"] == sft_rows
    assert sum(manifest["quality"]["kept_in_both_orders"].values()) == second_rows
    for source in {s for s, _ in verdicts}:
        assert abs(verdicts[(source, "model_a")] - verdicts[(source, "model_b")]) <= 1, source
