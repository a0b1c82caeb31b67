"""The output trains in the released trainers, with the commands of docs/training.md.

Each trainer lives in its own environment (`make trainers`, which `make test` runs first; the
versions are in tests/trainers/*.txt), with rubricforge's wheel installed there without its
dependencies, as the page says, and reads the shared build of the real local teacher (`real`
in conftest): the TRL snippets train for a few CPU steps with SmolLM2-135M; the verl and
OpenRLHF commands run with a check script in place of the trainer's entry point, so their
arguments are read by the trainer's own config and parser.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.engine.config import expand
from pipeline.rules.verdict import score
from pipeline.settings import load_config
from pipeline.teachers.local_model import ensure_checkpoint

from conftest import ROOT, install_wheel

pytestmark = pytest.mark.e2e
GUIDE = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
CHECKS = ROOT / "tests" / "trainers"
DOC_DATA = "build/rmr1"
DOC_MODEL = "Qwen/Qwen2.5-7B-Instruct"
# A trace of the trained format for each verdict.
TRACE = ("<type>Chat</type>\n<rubric>Accuracy.<justify>Facts first.</justify>\n</rubric>\n"
         "<eval><quote_A>a</quote_A> versus <quote_B>b</quote_B></eval>\n<answer>[[{}]]</answer>")
RIGHT = {"model_a": TRACE.format("A"), "model_b": TRACE.format("B")}
WRONG = {"model_a": TRACE.format("B"), "model_b": TRACE.format("A")}


def doc_block(marker: str) -> str:
    """The one fenced block of docs/training.md that contains `marker`."""
    found = [b for b in re.findall(r"```[a-z]*\n(.*?)```", GUIDE, re.S) if marker in b]
    assert len(found) == 1, f"docs/training.md should have one block with {marker!r}, has {len(found)}"
    return found[0]


def set_line(snippet: str, names: str, values: tuple[str, ...]) -> str:
    """Replace the snippet's `names = ...` line (the one a user edits) with `values`."""
    line = re.search(rf"^{re.escape(names)} = .*$", snippet, re.M)
    assert line, f"the snippet should set {names}"
    return snippet.replace(line.group(0), f"{names} = {', '.join(map(repr, values))}")


def run_check(trainer: str, command: list[str], job: dict, cwd: Path,
              timeout: int = 900) -> dict:
    """Run `command` with the trainer environment's python first on PATH; its report."""
    venv = ROOT / f".venv-{trainer}"
    if not (venv / ".installed").exists():
        pytest.fail(f"{venv} is missing: run `make trainers` (`make test` does)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", VIRTUAL_ENV=str(venv),
               TRAINER_CHECK_JOB=json.dumps(job),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(cwd / "hf"),
               TOKENIZERS_PARALLELISM="false", WANDB_MODE="disabled")
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    reports = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert reports, done.stdout[-3000:]
    return json.loads(reports[-1].removeprefix("REPORT "))


def read_part(out: Path, name: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in sorted((out / name).glob("train-*.parquet"))])


@pytest.fixture(scope="module")
def built(real, wheel) -> tuple[Path, str]:
    """The shared real-teacher build (it has both parts) and the embedded model's checkpoint;
    every trainer environment has rubricforge's wheel, without its dependencies."""
    for trainer in ("trl", "verl", "openrlhf"):
        if (ROOT / f".venv-{trainer}" / ".installed").exists():
            install_wheel(wheel, ROOT / f".venv-{trainer}" / "bin" / "python")
    out = real["first"][0]
    assert read_part(out, "sft").num_rows and read_part(out, "rl").num_rows
    model = ensure_checkpoint(expand(load_config([]).teacher.model_dir))
    return out, str(model)


def test_trl_trains_both_sft_forms_and_grpo_with_the_shipped_reward(built, tmp_path):
    out, model = built
    sft_snippet = set_line(doc_block("SFTTrainer("), "DATA, MODEL", (str(out), model))
    assert "train_dataset=trace_only" in sft_snippet
    grpo_snippet = set_line(doc_block("GRPOTrainer("), "DATA, MODEL", (str(out), model))
    job = {"sft": {"trace_only": sft_snippet,
                   "whole_chat": sft_snippet.replace("train_dataset=trace_only",
                                                     "train_dataset=whole_chat")},
           "grpo": grpo_snippet}
    report = run_check("trl", ["python", str(CHECKS / "trl_check.py")], job, tmp_path)
    assert report["trl"] == "1.16.0"
    first = read_part(out, "sft").slice(0, 1).to_pylist()[0]
    trace, question = first["judge_response"][-1]["content"], first["context_messages"][-1]["content"]
    trace_only, whole = report["sft_trace_only"], report["sft_whole_chat"]
    for run in (trace_only, whole):
        assert run["steps"] == 2 and len(run["losses"]) == 2 and run["finite"]
    # prompt-completion: the loss covers the trace (and the end of the turn), not the prompt
    assert trace_only["loss_covers"].startswith(trace)
    assert question[:200] not in trace_only["loss_covers"]
    assert len(trace_only["loss_covers"]) - len(trace) < 30
    # messages: one chat, the judge prompt then the trace, all of it trained on
    assert question[:200] in whole["whole_text"] and trace in whole["whole_text"]
    assert whole["loss_covers"] == whole["whole_text"]
    # the build's token count (token_lengths) is what TRL feeds the model
    assert whole["tokens"] == first["num_tokens"]
    grpo = report["grpo"]
    assert grpo["steps"] == 1 and grpo["finite"]
    assert grpo["reward_logs"] and all(-1.0 <= r <= 1.0 for r in grpo["reward_logs"])


def test_verl_reads_rl_and_loads_the_installed_reward_from_the_documented_command(built, tmp_path):
    out, model = built
    block = doc_block("verl.trainer.main_ppo").replace(DOC_DATA, str(out))
    command = block.replace("python -m verl.trainer.main_ppo", f"python {CHECKS / 'verl_check.py'}")
    job = {"model": model, "right": RIGHT, "wrong": WRONG}
    report = run_check("verl", ["bash", "-euc", command], job, tmp_path)
    assert report["verl"] == "0.9.1"
    rl = read_part(out, "rl").to_pylist()
    assert report["rows"] == len(rl)
    # by path, from the package installed in the trainer's environment
    assert report["reward_path"].startswith(str(ROOT / ".venv-verl" / "lib"))
    assert report["reward_path"].endswith("site-packages/pipeline/rules/verdict.py")
    assert sorted(report["ground_truths"]) == sorted(r["reward_model"]["ground_truth"] for r in rl)
    # verl's loader, from the command's keys: +1 for the right verdict, -1 for the wrong one
    assert report["scores"] == [1.0, -1.0] * len(rl)
    # the same rule as the filter's
    truths = report["ground_truths"]
    assert report["scores"] == [float(score(t[w], g)) for g in truths for t, w in
                                ((RIGHT, g), (WRONG, g))]
    if report["prompts"] is not None:
        assert sorted(map(json.dumps, report["prompts"])) == sorted(
            json.dumps(r["prompt"]) for r in rl)


def test_openrlhf_reads_the_documented_flags_and_masks_exactly_the_trace(built, tmp_path):
    out, model = built
    block = doc_block("openrlhf.cli.train_sft").replace(DOC_DATA, str(out)).replace(
        DOC_MODEL, model)
    command = block.replace("deepspeed --module openrlhf.cli.train_sft",
                            f"python {CHECKS / 'openrlhf_check.py'}")
    report = run_check("openrlhf", ["bash", "-euc", command], {}, tmp_path)
    assert (report["input_key"], report["output_key"], report["apply_chat_template"]) == (
        "context_messages", "judge_response", True)
    sft = read_part(out, "sft").to_pylist()
    assert report["rows_in"] == len(sft) == len(report["rows"])
    # OpenRLHF keeps the rows in file order: each row's loss covers its trace and the end of
    # the turn, and everything before it is the judge prompt, ending with the assistant's turn
    for row, pair in zip(report["rows"], sft, strict=True):
        assert row["trained_on"] == pair["judge_response"][-1]["content"] + report["eos"]
        assert pair["context_messages"][-1]["content"] in row["context"]
        assert row["context"].endswith("assistant\n")
