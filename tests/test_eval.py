"""`rubricforge eval`: each benchmark's scoring rule on hand-made results, and the command run
against a loopback judge on the shipped benchmark samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from stages.benchmarks.pairwise import Item, RewardBench2, first_per_group

from conftest import ROOT
from fake_openai import FakeOpenAI, completion


def items_of(groups: dict[str, int], slots: tuple[str, ...] = ("",)) -> list[Item]:
    out = []
    for group, n in groups.items():
        out += [Item(f"{group}:{i}", group, [{"role": "user", "content": "q"}],
                     {s: ("good", "bad") for s in slots}) for i in range(n)]
    return out


def test_rewardbench2_is_asked_by_its_protocol():
    rows = [{"id": i, "prompt": "q", "chosen": c, "rejected": ["r1", "r2", "r3"],
             "subset": subset} for i, subset, c in [("0", "Math", ["c"]), ("ref:0", "Ties", ["c"]),
                                                    ("tied:0", "Ties", ["c1", "c2"])]]
    asked = {p: [RewardBench2(p).asks(it) for it in RewardBench2(p).items(rows)]
             for p in ("best_of_four", "ratings", "pairwise")}
    rates = [(f"rate{i}", "rate") for i in range(4)]
    assert asked["best_of_four"] == [[("four", "four")], rates, [*rates, ("rate4", "rate")]]
    assert asked["ratings"] == [rates, rates, [*rates, ("rate4", "rate")]]
    assert asked["pairwise"] == [[(str(k), "pair") for k in range(3)], [], []]
    with pytest.raises(ValueError, match="Ties item id '7' is not ref:<n> or tied:<n>"):
        RewardBench2().items([{**rows[1], "id": "7"}])


def test_the_correct_answer_of_four_stands_at_a_fair_seeded_place():
    from pipeline.evaluation import drawn_letter

    draws = [drawn_letter(1234, "rewardbench2", str(i)) for i in range(4000)]
    assert all(900 < draws.count(x) < 1100 for x in "ABCD")
    assert draws == [drawn_letter(1234, "rewardbench2", str(i)) for i in range(4000)]


def test_the_drawn_order_is_a_fair_seeded_coin_per_comparison():
    from pipeline.evaluation import drawn_winner

    draws = [drawn_winner(1234, "rewardbench", str(i), "") for i in range(2000)]
    assert 900 < draws.count("model_a") < 1100
    assert draws == [drawn_winner(1234, "rewardbench", str(i), "") for i in range(2000)]
    assert draws != [drawn_winner(7, "rewardbench", str(i), "") for i in range(2000)]
    assert len({drawn_winner(1234, "rm_bench", "3", f"{i}-{j}") for i in range(3)
                for j in range(3)}) == 2, "each comparison of an item draws on its own"


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
    """Picks the answer that is better, wherever it stands; of four, the right one; rates a
    right answer 9 and any other 2."""
    text = body["messages"][-1]["content"]
    if "[The Start of the Chatbot's Response]" in text:
        return _rating(9 if "The right answer" in text else 2)
    if "[The Start of Chatbot D" in text:
        return _trace(next(x for x in "ABCD" if _response(text, x).startswith("The right")))
    return _trace(better(body))


def _response(text: str, letter: str) -> str:
    return text.split(f"[The Start of Chatbot {letter}'s Response]\n")[1]


def _rating(n: int):
    return completion("<type>Chat</type>\n<rubric>Accuracy (weight 100%)<justify>Facts decide."
                      f"</justify>\n</rubric>\n<eval><summary>it answers</summary>.</eval>\n"
                      f"<answer>{n}</answer>")


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
    # RewardBench, RM-Bench, RMB pairwise and best-of-N: one per comparison; RewardBench 2:
    # one per item of five subsets (four answers at once), one per answer of Ties (3 + 5)
    pairs = 7 + 36 + 3 + 7
    one_order = pairs + 5 + 8
    with FakeOpenAI(knowing) as server:
        done = run_eval(server.base_url, tmp_path / "knowing")
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        report = json.loads((tmp_path / "knowing" / "eval" / "eval.json").read_text())
        asked = len(server.requests)
        assert report["judgements"] == one_order, "one judgement per comparison"
        # Ties' ref:0 and tied:0 items share three answers: rated once, through the cache
        assert asked == one_order - 3 and report["cached"] == 3
        for name, b in report["benchmarks"].items():
            if name != "rewardbench2":
                assert b["score"] == 1.0 and b["both_orders"] is None, name
        rb2 = report["benchmarks"]["rewardbench2"]
        # Ties' aggregate gives a judge that rates every right answer alike 1.01 (its margin
        # term is +0.01 when the right answers' spread is 0): the six subsets' mean is above 1
        assert rb2["subsets"] == {"Factuality": 1.0, "Focus": 1.0, "Math": 1.0,
                                  "Precise IF": 1.0, "Safety": 1.0, "Ties": 1.01}
        assert rb2["score"] == round(6.01 / 6, 4) and rb2["protocol"] == "best_of_four"
        assert report["rmb_four_sets"]["score"] == 1.0
        assert "RewardBench 2 asked best-of-four" in done.stdout and "RMB, four sets" in done.stdout
        four = [r for r in server.requests if "Chatbot D" in r["messages"][-1]["content"]]
        assert len(four) == 5 and "[[D]]" in four[0]["messages"][0]["content"]
        both = run_eval(server.base_url, tmp_path / "knowing", "eval.both_orders=true")
        assert both.returncode == 0, (both.stdout + both.stderr)[-3000:]
        report = json.loads((tmp_path / "knowing" / "eval" / "eval.json").read_text())
        assert len(server.requests) == asked + pairs, "only the pairs' other orders were asked"
        assert report["judgements"] == one_order + pairs and report["cached"] == one_order
        for name, b in report["benchmarks"].items():
            assert b["swap_agreement"] == (None if name == "rewardbench2" else 1.0), name
        assert report["benchmarks"]["rewardbench"]["both_orders"]["score"] == 1.0
        asked = len(server.requests)
        again = run_eval(server.base_url, tmp_path / "knowing", "--limit", "1")
        assert again.returncode == 0 and len(server.requests) == asked, "all from the cache"
        started = "started a local Ray"
        assert started in done.stderr and started not in again.stderr, "nothing to ask, no Ray"
        limited = json.loads((tmp_path / "knowing" / "eval" / "eval.json").read_text())
        assert limited["cached"] == limited["judgements"] and limited["limit"] == 1
        assert limited["benchmarks"]["rm_bench"]["items"] == 4  # one per domain
        # one Ties item (its ref:) of the pair Ties is scored by: no Ties figure, no score
        assert limited["benchmarks"]["rewardbench2"]["score"] is None
        assert "not the RewardBench 2 score: Ties not judged" in again.stdout
        estimate = run_eval(server.base_url, tmp_path / "knowing", "--estimate")
        line = next(x for x in estimate.stdout.splitlines() if x.strip().startswith("eval "))
        calls, cached, to_ask = (int(v.replace(",", "")) for v in line.split()[2:5])
        assert (cached, to_ask) == (calls, 0) and calls > limited["judgements"]
        assert len(server.requests) == asked
        assert "rmb_bon 7 pairwise" in estimate.stdout, "the best-of-N set's requests are counted"
        assert "rewardbench2 5 best-of-four + 8 ratings" in estimate.stdout
        rated = run_eval(server.base_url, tmp_path / "rated", "eval.benchmarks=[rewardbench2]",
                         "eval.rb2_protocol=ratings")
        assert rated.returncode == 0, (rated.stdout + rated.stderr)[-3000:]
        r = json.loads((tmp_path / "rated" / "eval" / "eval.json").read_text())
        assert r["judgements"] == 5 * 4 + 8 and r["benchmarks"]["rewardbench2"]["score"] == 1.0017
        paired = run_eval(server.base_url, tmp_path / "paired", "eval.benchmarks=[rewardbench2]",
                          "eval.rb2_protocol=pairwise")
        assert paired.returncode == 0, (paired.stdout + paired.stderr)[-3000:]
        r = json.loads((tmp_path / "paired" / "eval" / "eval.json").read_text())["benchmarks"]
        assert r["rewardbench2"]["score"] is None and r["rewardbench2"]["mean_of_5_subsets"] == 1.0
        assert "Ties cannot be judged pairwise" in paired.stdout
    with FakeOpenAI(partly_wrong) as server:
        partly = run_eval(server.base_url, tmp_path / "partly", "eval.benchmarks=[rewardbench,rmb]")
        assert partly.returncode == 0, (partly.stdout + partly.stderr)[-3000:]
    p = json.loads((tmp_path / "partly" / "eval" / "eval.json").read_text())["benchmarks"]
    # RewardBench sample: alpacaeval-easy 1/1, alpacaeval-hard 1/2 (the limerick), llmbar-natural
    # 1/2 (heapsort), donotanswer 1/1, math-prm 1/1; Chat weighs its subsets by their published
    # counts (100 and 95), whatever was judged: (1 * 100 + 0.5 * 95) / 195
    assert p["rewardbench"]["subsets"] == {"alpacaeval-easy": 1.0, "alpacaeval-hard": 0.5,
                                           "donotanswer": 1.0, "llmbar-natural": 0.5,
                                           "math-prm": 1.0}
    assert p["rewardbench"]["sections"] == {"Chat": 0.7564, "Chat Hard": 0.5, "Safety": 1.0,
                                            "Reasoning": 1.0}
    assert p["rewardbench"]["score"] == round((147.5 / 195 + 0.5 + 1.0 + 1.0) / 4, 4)
    # RMB sample: the harmlessness item right, both helpfulness items (limerick, heapsort) wrong
    assert p["rmb"]["goals"] == {"Harmlessness": 1.0, "Helpfulness": 0.0} and p["rmb"]["score"] == 0.5
    with FakeOpenAI(lambda body, n: _trace("A")) as server:
        biased = run_eval(server.base_url, tmp_path / "biased", "eval.benchmarks=[rewardbench]",
                          "eval.both_orders=true")
        assert biased.returncode == 0, (biased.stdout + biased.stderr)[-3000:]
    b = json.loads((tmp_path / "biased" / "eval" / "eval.json").read_text())["benchmarks"]
    assert b["rewardbench"]["both_orders"]["score"] == 0.0 and b["rewardbench"]["swap_agreement"] == 0.0
    rows = pq.read_table(tmp_path / "biased" / "eval" / "judgements.parquet").to_pylist()
    assert {r["verdict"] for r in rows} == {"A"} and len(rows) == 14
    assert sum(r["right"] for r in rows) == 7, "right whenever the better answer was A"
    drawn = [r for r in rows if r["drawn_order"]]
    assert len(drawn) == 7 and 0 < sum(r["better_answer"] == "A" for r in drawn) < 7
    assert b["rewardbench"]["comparisons_right"] == sum(r["right"] for r in drawn)
    assert {"eval.json", "eval.md", "eval.png", "judgements.parquet"} <= {
        p.name for p in (tmp_path / "biased" / "eval").iterdir()}
    report = json.loads((tmp_path / "biased" / "eval" / "eval.json").read_text())
    assert report["verdict_accuracy"] == 0.5 and report["config"]["teacher"]["model"] == "judge"


def test_eval_mistakes_are_one_line_before_any_work(tmp_path):
    bad = run_eval("http://127.0.0.1:9/v1", tmp_path, "eval.benchmarks=[nope]")
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("rubricforge: config error: eval.benchmarks names 'nope', which "
                                  "is not under benchmarks (known: rewardbench, rewardbench2, "
                                  "rm_bench, rmb, rmb_bon)")


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
    assert 0 < sent < 7 and report["not_sent"] == 7 - sent
    assert "teacher.max_cost_usd reached" in capped.stdout + capped.stderr
