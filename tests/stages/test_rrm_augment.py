"""The optional RRM-style augmentation: added pairs whose rejected answer is a good answer to
another prompt, each traceable to its pair and accounted for in the manifest."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import ray

from pipeline.engine.config import ConfigError
from pipeline.engine.runner import apply_stage
from pipeline.engine.schema import ALIVE, CANONICAL_COLUMNS, KEPT, conform
from pipeline.engine.stage import BuildContext
from pipeline.output.manifest import Tally, build_manifest, misplaced_rows
from pipeline.plan import make_plan
from pipeline.rules.keys import pair_id
from pipeline.settings import load_config
from stages.rrm_augment import RRMAugment, RRMAugmentParams

pytestmark = pytest.mark.usefixtures("local_ray")
GIVEN = (*CANONICAL_COLUMNS, "prompt_group", "split")


def rows() -> list[dict]:
    """24 pairs of source s: 16 rl (pairs 0 and 1 share a prompt group), 8 sft."""
    out = []
    for i in range(24):
        out.append({"pair_id": f"p{i}", "source": "s", "source_index": i, "pair_index": 0,
                    "outcome": ALIVE, "split": "rl" if i < 16 else "sft",
                    "prompt_group": "p0" if i < 2 else None,
                    "prompt": [{"role": "user", "content": f"question {i}"}],
                    "chosen": [{"role": "assistant", "content": f"good answer {i}"}],
                    "rejected": [{"role": "assistant", "content": f"bad answer {i}"}]})
    return out


def augment(params: RRMAugmentParams, cfg) -> tuple[RRMAugment, list[dict]]:
    stage = RRMAugment(params, BuildContext(cfg))
    columns = (*GIVEN, *(c for c in stage.outputs if c not in GIVEN))
    ds = ray.data.from_arrow(conform(pa.Table.from_pylist(rows()), GIVEN))
    out = apply_stage(ds, stage, columns).take_all()
    return stage, sorted(out, key=lambda r: (r["source"], r["source_index"]))


def test_added_pairs_take_another_prompts_good_answer_and_lead_back_to_their_pair(cfg):
    stage, out = augment(RRMAugmentParams(fraction=0.25), cfg)
    given = {r["source_index"]: r for r in rows()}
    added = [r for r in out if r["source"] == "s+rrm"]
    assert len(out) == 24 + len(added) and stage.added == {"s+rrm": len(added)}
    assert sum(r["split"] == "rl" for r in added) == 4 and sum(r["split"] == "sft" for r in added) == 2
    for r in added:
        origin = given[r["source_index"]]
        lineage = json.loads(r["raw"])
        donor = given[int(lineage["rejected_from"].split("#")[1])]
        assert lineage["augmented_from"] == f"s#{r['source_index']}"
        assert (r["prompt"], r["chosen"], r["split"]) == (origin["prompt"], origin["chosen"],
                                                         origin["split"])
        assert r["rejected"] == donor["chosen"], "a good answer, to another prompt"
        assert donor["split"] == origin["split"] and donor["source_index"] != origin["source_index"]
        assert (donor["prompt_group"] or donor["pair_id"]) != (origin["prompt_group"]
                                                              or origin["pair_id"])
        assert r["pair_id"] == pair_id(r["prompt"], r["chosen"], r["rejected"])
        assert r["outcome"] == ALIVE
    fields = ("pair_id", "source_index", "split", "prompt", "chosen", "rejected", "raw")
    assert [{k: r[k] for k in fields} for r in out if r["source"] == "s"] == [
        {k: g.get(k) for k in fields} for g in rows()], "the pairs themselves are left as they were"
    assert augment(RRMAugmentParams(fraction=0.25), cfg)[1] == out, "seeded: the same pairs"


def test_only_the_parts_asked_are_augmented_and_the_manifest_adds_up(cfg):
    stage, out = augment(RRMAugmentParams(fraction=0.5, parts=["rl"]), cfg)
    added = [r for r in out if r["source"] == "s+rrm"]
    assert len(added) == 8 and {r["split"] for r in added} == {"rl"}
    tally = Tally()
    tally.add([r | {"outcome": KEPT, "reason": "", "decided_by": ""} for r in out])
    keys = {"s+rrm": (stage.name, stage.added_keys["s+rrm"])}
    m = build_manifest(cfg, {"s": 24}, ["collect", stage.name], tally, {}, added=keys)
    assert m["balanced"] and m["added"] == {"s+rrm": 8}
    assert m["accounting"]["s+rrm"]["added_rows"] == 8 and m["totals"]["kept_rl"] == 24
    assert m["stages"][1] | {"summary": None} == {"stage": "rrm_augment", "rows_in": 24,
                                                   "added": 8, "removed": {}, "rows_out": 32,
                                                   "summary": None}
    # an added row lost on the way, or one nobody added, is named
    lost = Tally()
    lost.add([r | {"outcome": KEPT, "reason": "", "decided_by": ""} for r in out
              if r["source"] == "s" or r["source_index"] != added[0]["source_index"]]
             + [{**added[1], "source_index": 99, "outcome": KEPT, "reason": "",
                 "decided_by": ""}])
    wrong = misplaced_rows("s+rrm", 8, lost, stage.added_keys["s+rrm"])
    assert wrong["missing_rows"]["first"] == [f"s+rrm#{added[0]['source_index']}"]
    assert wrong["unknown_rows"]["first"] == ["s+rrm#99"]


def test_settings_are_checked_before_any_work():
    with pytest.raises(ConfigError, match="fraction must be in"):
        make_plan(load_config(["recipe.stages.rrm_augment={fraction: 0}"]))
    with pytest.raises(ConfigError, match=r"parts: \['train'\] are not parts"):
        make_plan(load_config(["recipe.stages.rrm_augment={parts: [train]}"]))
