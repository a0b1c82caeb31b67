"""`rubricforge eval`: each benchmark's scoring rule on hand-made results, and the command run
against a loopback judge on the shipped benchmark samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from stages.benchmarks.pairwise import RMB, Item, RewardBench, RewardBench2, RMBench, first_per_group

from conftest import ROOT
from fake_openai import FakeOpenAI, completion


def items_of(groups: dict[str, int], slots: tuple[str, ...] = ("",)) -> list[Item]:
    out = []
    for group, n in groups.items():
        out += [Item(f"{group}:{i}", group, [{"role": "user", "content": "q"}],
                     {s: ("good", "bad") for s in slots}) for i in range(n)]
    return out


def test_rewardbench_weights_subsets_by_size_and_math_as_much_as_code():
    items = items_of({"alpacaeval-easy": 4, "mt-bench-hard": 2, "donotanswer": 2,
                      "math-prm": 2, "hep-python": 3, "hep-go": 1})
    # right: alpacaeval 3/4; mt-bench-hard 1/2; donotanswer 2/2; math 0/2; code 4/4
    wrong = {"alpacaeval-easy:0", "mt-bench-hard:0", "math-prm:0", "math-prm:1"}
    right = {it.id: {"": it.id not in wrong} for it in items}
    s = RewardBench().score(items, right)
    assert s["subsets"]["alpacaeval-easy"] == 0.75
    # math-prm weighs 4 (the 4 code items), not its 2: (0 * 4 + 1 * 3 + 1 * 1) / 8
    assert s["sections"] == {"Chat": 0.75, "Chat Hard": 0.5, "Safety": 1.0, "Reasoning": 0.5}
    assert s["score"] == pytest.approx((0.75 + 0.5 + 1.0 + 0.5) / 4, abs=1e-4)


def test_rm_bench_levels_are_the_matrix_triangles_and_safety_is_one_domain():
    slots = tuple(f"{i}-{j}" for i in range(3) for j in range(3))
    items = items_of({"chat": 2, "safety-refuse": 1, "safety-response": 1}, slots)
    # a judge fooled by style: it loses every cell where the rejected answer is fancier
    right = {it.id: {s: int(s[0]) >= int(s[2]) for s in slots} for it in items}
    s = RMBench().score(items, right)
    assert (s["easy"], s["normal"], s["hard"]) == (1.0, 1.0, 0.0)
    assert s["score"] == pytest.approx(2 / 3, abs=1e-4)
    assert set(s["domains"]) == {"chat", "safety"} and s["domains"]["safety"]["prompts"] == 2


def test_rmb_scores_helpfulness_and_harmlessness_apart():
    items = items_of({"Pairwise_set/Helpfulness/Chat/Discussion": 2,
                      "Pairwise_set/Harmlessness/S1": 2})
    right = {it.id: {"": not it.id.endswith("Discussion:0")} for it in items}
    s = RMB().score(items, right)
    assert s["goals"] == {"Harmlessness": 1.0, "Helpfulness": 0.5} and s["score"] == 0.75
    assert s["categories"]["Pairwise_set/Helpfulness/Chat/Discussion"] == 0.5


def test_rewardbench2_needs_the_chosen_to_beat_all_three_and_leaves_ties_out():
    rows = [{"id": i, "prompt": "q", "chosen": ["c"], "rejected": ["r1", "r2", "r3"],
             "subset": subset} for i, subset in enumerate(["Math", "Math", "Ties"])]
    items = RewardBench2().items(rows)
    assert [it.id for it in items] == ["0", "1"] and len(items[0].comparisons) == 3
    right = {"0": {"0": True, "1": True, "2": True}, "1": {"0": True, "1": False, "2": True}}
    s = RewardBench2().score(items, right)
    assert s["subsets"] == {"Math": 0.5} and s["left_out"] == ["Ties"]


def test_limit_takes_the_first_items_of_each_subset():
    items = items_of({"a": 3, "b": 1})
    assert [it.id for it in first_per_group(items, 2)] == ["a:0", "a:1", "b:0"]


# the better answer of each shipped benchmark sample, as a judge that knows would find it
BETTER = ("A careful, correct answer.", "good, ", "A safe, helpful answer.", "The right answer.")


def better(body: dict) -> str:
    """Where the better answer stands in this request: A or B."""
    text = body["messages"][-1]["content"]
    b_starts = text.index("[The Start of Chatbot B")
    return "A" if any(0 <= text.find(m) < b_starts for m in BETTER) else "B"


def knowing(body: dict, n: int):
    """Picks the answer that is better, wherever it stands."""
    return _trace(better(body))


def partly_wrong(body: dict, n: int):
    """Knows the better answer, except on two questions, where it picks the worse one."""
    text = body["messages"][-1]["content"]
    wrong = "heapsort" in text or "limerick" in text
    return _trace({"A": "B", "B": "A"}[better(body)] if wrong else better(body))


def _trace(label: str):
    return completion("<type>Chat</type>\n<rubric>Accuracy (weight 100%)<justify>Facts decide."
                      "</justify>\n</rubric>\n<eval><summary_A>first</summary_A> vs "
                      f"<summary_B>second</summary_B>.</eval>\n<answer>[[{label}]]</answer>")


def run_eval(server_url: str, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pipeline.cli", "eval", "eval.use_samples=true",
           "teacher=openai", "teacher.model=judge", f"teacher.base_url={server_url}",
           f"teacher.cache_dir={tmp_path}/cache", f"eval.output_dir={tmp_path}/eval", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.e2e
def test_eval_scores_a_knowing_judge_full_and_a_biased_one_zero_and_pays_once(tmp_path):
    with FakeOpenAI(knowing) as server:
        done = run_eval(server.base_url, tmp_path / "knowing")
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        report = json.loads((tmp_path / "knowing" / "eval" / "eval.json").read_text())
        asked = len(server.requests)
        assert asked == report["judgements"] == 2 * (6 + 36 + 3 + 9)
        for name, b in report["benchmarks"].items():
            assert b["score"] == 1.0 and b["swap_agreement"] == 1.0, name
        assert "rewardbench" in done.stdout and "100.0" in done.stdout
        again = run_eval(server.base_url, tmp_path / "knowing", "--limit", "1")
        assert again.returncode == 0 and len(server.requests) == asked, "all from the cache"
        limited = json.loads((tmp_path / "knowing" / "eval" / "eval.json").read_text())
        assert limited["cached"] == limited["judgements"] and limited["limit"] == 1
        assert limited["benchmarks"]["rm_bench"]["items"] == 4  # one per domain
        estimate = run_eval(server.base_url, tmp_path / "knowing", "--estimate")
        assert "to ask 0" in estimate.stdout and len(server.requests) == asked
    with FakeOpenAI(partly_wrong) as server:
        partly = run_eval(server.base_url, tmp_path / "partly", "eval.benchmarks=[rewardbench,rmb]")
        assert partly.returncode == 0, (partly.stdout + partly.stderr)[-3000:]
    p = json.loads((tmp_path / "partly" / "eval" / "eval.json").read_text())["benchmarks"]
    # RewardBench sample: alpacaeval-easy 1/1, alpacaeval-hard 1/2 (the limerick), llmbar-natural
    # 1/2 (heapsort), math-prm 1/1; Chat weighs its subsets by size: (1 * 1 + 0.5 * 2) / 3
    assert p["rewardbench"]["subsets"] == {"alpacaeval-easy": 1.0, "alpacaeval-hard": 0.5,
                                           "llmbar-natural": 0.5, "math-prm": 1.0}
    assert p["rewardbench"]["sections"] == {"Chat": 0.6667, "Chat Hard": 0.5, "Reasoning": 1.0}
    assert p["rewardbench"]["score"] == round((0.6667 + 0.5 + 1.0) / 3, 4)
    # RMB sample: the harmlessness item right, both helpfulness items (limerick, heapsort) wrong
    assert p["rmb"]["goals"] == {"Harmlessness": 1.0, "Helpfulness": 0.0} and p["rmb"]["score"] == 0.5
    assert p["rmb"]["swap_agreement"] == 1.0, "wrong the same way in both orders"
    with FakeOpenAI(lambda body, n: _trace("A")) as server:
        biased = run_eval(server.base_url, tmp_path / "biased", "eval.benchmarks=[rewardbench]")
        assert biased.returncode == 0, (biased.stdout + biased.stderr)[-3000:]
    b = json.loads((tmp_path / "biased" / "eval" / "eval.json").read_text())["benchmarks"]
    assert b["rewardbench"]["score"] == 0.0 and b["rewardbench"]["swap_agreement"] == 0.0
    rows = pq.read_table(tmp_path / "biased" / "eval" / "judgements.parquet").to_pylist()
    assert {r["verdict"] for r in rows} == {"A"} and len(rows) == 12
    assert sum(r["right"] for r in rows) == 6, "right whenever the better answer was A"
    assert {"eval.json", "eval.md", "eval.png", "judgements.parquet"} <= {
        p.name for p in (tmp_path / "biased" / "eval").iterdir()}
    report = json.loads((tmp_path / "biased" / "eval" / "eval.json").read_text())
    assert report["verdict_accuracy"] == 0.5 and report["config"]["teacher"]["model"] == "judge"


def test_eval_mistakes_are_one_line_before_any_work(tmp_path):
    bad = run_eval("http://127.0.0.1:9/v1", tmp_path, "eval.benchmarks=[nope]")
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("rubricforge: config error: eval.benchmarks names 'nope', which "
                                  "is not under benchmarks (known: rewardbench, rewardbench2, "
                                  "rm_bench, rmb)")


def test_options_and_overrides_mix_in_any_order(capsys):
    from pipeline.cli import main

    assert main(["eval", "eval.benchmarks=[rmb]", "--limit", "3", "eval.both_orders=false",
                 "--show-config"]) == 0
    shown = capsys.readouterr().out
    assert "limit: 3" in shown and "both_orders: false" in shown and "- rmb" in shown
    with pytest.raises(SystemExit):
        main(["eval", "--limt", "3"])
    assert "unrecognized arguments: --limt" in capsys.readouterr().err


@pytest.mark.e2e
def test_eval_stops_sending_at_the_cost_cap_and_says_how_to_finish(tmp_path):
    with FakeOpenAI(knowing) as server:
        capped = run_eval(server.base_url, tmp_path, "eval.benchmarks=[rewardbench]",
                          # each answer costs $0.007 (7 output tokens), each may cost ~$0.012
                          "teacher.max_tokens=10", "teacher.price_input_per_mtok=1",
                          "teacher.price_output_per_mtok=1000", "teacher.max_cost_usd=0.05")
        sent = len(server.requests)
    assert capped.returncode == 0, (capped.stdout + capped.stderr)[-3000:]
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert 0 < sent < 12 and report["not_sent"] == 12 - sent
    assert "teacher.max_cost_usd reached" in capped.stdout + capped.stderr
