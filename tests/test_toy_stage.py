"""A stage is one module: a toy one with a column and counts of its own, added to a copy of the
code with no other edit, is found, run by a real build, written and counted in the manifest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import ROOT

pytestmark = pytest.mark.e2e

MODULE = '''"""A toy stage: counts the chosen answer's words, and rejects pairs whose chosen answer is
shorter than `min_words`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.engine.schema import REJECTED
from pipeline.engine.stage import Stage, decide, map_rows


@dataclass(frozen=True)
class ToyParams:
    min_words: int = 40


class AnswerWords(Stage):
    name = "answer_words"
    inputs = ("chosen",)
    outputs = ("answer_words", "outcome", "reason", "detail", "decided_by")
    columns = {"answer_words": pa.int32()}
    Params = ToyParams

    def process(self, rows: pa.Table) -> pa.Table:
        def one(row: dict[str, Any]) -> dict[str, Any]:
            n = len(row["chosen"][0]["content"].split())
            if n < self.params.min_words:
                return {"answer_words": n} | decide(REJECTED, "too_short", self.name, f"{n} words")
            return {"answer_words": n}

        return map_rows(rows, one, self.outputs)

    def statistics(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        counted = [r["answer_words"] for r in rows if r.get("answer_words") is not None]
        return {"counted": len(counted), "words": sum(counted)}
'''


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The code as shipped, plus the toy stage's module and nothing else."""
    root = tmp_path_factory.mktemp("toy-stage") / "repo"
    for part in ("pipeline", "stages", "conf", "data_cards"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "stages" / "answer_words.py").write_text(MODULE)
    return root


def test_a_stage_with_its_own_column_and_counts_is_one_module(checkout, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(checkout), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "build", f"output.dir={out}",
         "recipe.stages.split.distill_fraction=0", "+recipe.stages.answer_words={min_words: 40}"],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    m = json.loads((out / "manifest.json").read_text())
    assert m["balanced"]
    entry = next(s for s in m["stages"] if s["stage"] == "answer_words")
    cut = entry["removed"].get("rejected:too_short", 0)
    rejected = pq.read_table(next((out / "rejected").glob("*.parquet")))
    assert rejected.schema.field("answer_words").type == "int32", "typed as the stage declared"
    short = [r for r in rejected.to_pylist() if r["reason"] == "too_short"]
    assert len(short) == cut > 0 and all(r["answer_words"] < 40 for r in short)
    # its own counts: every row it saw, wherever the row ended
    assert entry["statistics"]["counted"] == entry["rows_in"]
    assert entry["statistics"]["words"] >= 40 * (entry["rows_in"] - cut)
    assert not (checkout / "pipeline" / "engine" / "schema.py").read_text().count("answer_words")
