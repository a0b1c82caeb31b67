"""A teacher backend is one module and one YAML, and a stage is one module: a toy of each, added to
a copy of the code with no other edit, is found, configured, checked and run by a real build (one
build for both), the stage's own column written and its own counts in the manifest."""

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

BACKEND = '''"""A toy judge: answers every request at once with the same judgement, no model behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.teachers.backends.base import Backend, TeacherConfig
from pipeline.teachers.cache import ResponseCache, answer_record

TRACE = ("<type>Chat</type>\\n<rubric>Accuracy (weight 100%)<justify>Facts decide."
         "</justify>\\n</rubric>\\n<eval><summary_A>first</summary_A> is right; "
         "<summary_B>second</summary_B> is not.</eval>\\n<answer>[[{}]]</answer>")


@dataclass
class ToyConfig(TeacherConfig):
    verdict: str = "A"


class ToyBackend(Backend):
    name = "toy"
    Config = ToyConfig

    def check(self, key: str, t: Any, asked: bool) -> None:
        from pipeline.engine.config import ConfigError

        if t.verdict not in ("A", "B"):
            raise ConfigError(f"{key}.verdict must be A or B")

    def answer(self, requests, n, t, stage, meter, endpoints, resources):
        cache = ResponseCache(t.cache_dir)
        answered = {}
        for row in requests.iter_rows():
            cache.put(row["key"], answer_record(TRACE.format(t.verdict), "stop", 5, 9, 0.0,
                                                t.model))
            answered[row["key"]] = None
        return answered
'''

STAGE = '''"""A toy stage: counts the chosen answer's words, and rejects pairs whose chosen answer is
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


YAML = """# A toy judge that always says one letter (tests only). The keys a user may set.
backend: toy
model: toy-judge
verdict: A
cache_dir: ~/.cache/rubricforge/teacher
"""


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The code as shipped, plus the toy backend's module and YAML, the toy stage's module, and
    nothing else."""
    root = tmp_path_factory.mktemp("toy") / "repo"
    for part in ("pipeline", "stages", "conf", "data_cards"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "pipeline" / "teachers" / "backends" / "toy.py").write_text(BACKEND)
    (root / "stages" / "answer_words.py").write_text(STAGE)
    (root / "conf" / "teacher" / "toy.yaml").write_text(YAML)
    return root


def run(root: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "build", *overrides], cwd=root,
                          env=env, capture_output=True, text=True, timeout=900)


def test_a_backend_and_a_stage_are_one_module_each(checkout, tmp_path):
    bad = run(checkout, "teacher=toy", "teacher.verdict=C")
    assert bad.returncode != 0
    assert "teacher.verdict must be A or B" in bad.stderr + bad.stdout
    typo = run(checkout, "teacher=toy", "teacher.replicas=2")
    assert "teacher.replicas" in typo.stderr + typo.stdout, "a setting the toy does not have"
    out = tmp_path / "out"
    done = run(checkout, "teacher=toy", f"teacher.cache_dir={tmp_path}/cache",
               f"output.dir={out}", "~recipe.stages.bootstrap",
               "+recipe.stages.answer_words={min_words: 40}")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    m = json.loads((out / "manifest.json").read_text())
    assert m["balanced"]
    pass1 = next(c for c in m["teacher"]["by_call"] if c["call"] == "pass 1")
    assert pass1["model"] == "toy-judge" and pass1["requests"] == pass1["calls"] > 0
    sft = pq.read_table(next((out / "sft").glob("*.parquet"))).to_pylist()
    assert sft and {r["winner"] for r in sft} == {"model_a"}, "the toy always says A"
    assert all(r["judge_response"][0]["content"].endswith("[[A]]</answer>") for r in sft)
    # the stage: its column, typed as it declared, and its own counts of every row it saw
    entry = next(s for s in m["stages"] if s["stage"] == "answer_words")
    cut = entry["removed"].get("rejected:too_short", 0)
    rejected = pq.read_table(next((out / "rejected").glob("*.parquet")))
    assert rejected.schema.field("answer_words").type == "int32"
    short = [r for r in rejected.to_pylist() if r["reason"] == "too_short"]
    assert len(short) == cut > 0 and all(r["answer_words"] < 40 for r in short)
    assert entry["statistics"]["counted"] == entry["rows_in"]
    assert entry["statistics"]["words"] >= 40 * (entry["rows_in"] - cut)
    assert "answer_words" not in (checkout / "pipeline" / "engine" / "schema.py").read_text()
