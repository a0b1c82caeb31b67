"""Split is stratified and seeded; placement is balanced; both sides render identically."""

from __future__ import annotations

import random
from collections import Counter

import pyarrow as pa
import pytest

from pipeline.engine.stage import BuildContext
from pipeline.rules.judge_prompt import judge_messages
from pipeline.rules.templates import fill
from pipeline.settings import load_config
from stages.place import Place
from stages.split import Split, SplitParams

from conftest import messages


def rows(n_per_source: dict[str, int], split: str | None = None) -> pa.Table:
    out = []
    for source, n in n_per_source.items():
        for i in range(n):
            out.append({"pair_id": f"{source}-{i:04d}", "source": source, "source_index": i,
                        "pair_index": 0, "prompt_group": None,
                        **({"split": split} if split else {})})
    return pa.Table.from_pylist(out)


def run_split(cfg, table, fraction):
    stage = Split(SplitParams(distill_fraction=fraction), BuildContext(cfg))
    return stage.process(table)


@pytest.mark.parametrize("n", [1, 7, 100, 1001])
def test_split_takes_the_exact_fraction(cfg, n):
    out = run_split(cfg, rows({"s": n}), 0.12)
    assert out.column("split").to_pylist().count("sft") == round(0.12 * n)


def test_split_is_seeded_and_independent_of_row_order(cfg):
    table = rows({"s": 200})
    first = dict(zip(table.column("pair_id").to_pylist(),
                     run_split(cfg, table, 0.3).column("split").to_pylist(), strict=True))
    order = list(range(200))
    random.Random(3).shuffle(order)
    shuffled = table.take(order)
    again = dict(zip(shuffled.column("pair_id").to_pylist(),
                     run_split(cfg, shuffled, 0.3).column("split").to_pylist(), strict=True))
    assert first == again
    other = load_config([f"seed={cfg.seed + 1}"])
    moved = run_split(other, table, 0.3).column("split").to_pylist()
    assert moved != list(first.values())


@pytest.mark.parametrize("n", [1, 2, 9, 50, 333])
def test_placement_is_balanced_within_one(cfg, n):
    out = Place(None, BuildContext(cfg)).process(rows({"s": n}, split="sft"))
    counts = Counter(out.column("winner").to_pylist())
    assert abs(counts["model_a"] - counts["model_b"]) <= 1
    assert set(counts) <= {"model_a", "model_b"}


def test_render_is_symmetric(cfg):
    """Swapping the two answers swaps them in the prompt and changes nothing else."""
    q = messages(("user", "Which is bigger, 2 or 3?"))
    ab = judge_messages(q, "ANSWER-ONE", "ANSWER-TWO", cfg.prompt)[1]["content"]
    ba = judge_messages(q, "ANSWER-TWO", "ANSWER-ONE", cfg.prompt)[1]["content"]
    assert ab.replace("ANSWER-ONE", "X").replace("ANSWER-TWO", "ANSWER-ONE").replace(
        "X", "ANSWER-TWO") == ba
    assert ab.count("Chatbot A") == ab.count("Chatbot B")  # same labels, same number of times


def test_multi_turn_shows_both_whole_conversations(cfg):
    prompt = messages(("user", "I like tea."), ("assistant", "Nice!"), ("user", "Which kind?"))
    msgs = judge_messages(prompt, "Green tea.", "Black tea.", cfg.prompt)
    user = msgs[1]["content"]
    assert msgs[0]["role"] == "system" and msgs[1]["role"] == "user"
    assert user.count("I like tea.") == 2 and user.count("Which kind?") == 2
    conv_a, conv_b = user.split("[The Start of the Conversation between Chatbot A")[1].split(
        "[The Start of the Conversation between Chatbot B")
    assert "Chatbot A: Nice!" in conv_a and "Chatbot A: Green tea." in conv_a
    assert "Chatbot B: Nice!" in conv_b and "Chatbot B: Black tea." in conv_b
    assert "Chatbot B" not in conv_a and "Chatbot A" not in conv_b


def test_answer_text_is_never_read_as_a_placeholder(cfg):
    sneaky = "I say {answer_b} and {question}"
    out = fill(cfg.prompt.single_turn, {"question": "Q?", "answer_a": sneaky, "answer_b": "B!"})
    assert sneaky in out and out.count("B!") == 1


def test_system_prompt_names_every_tag(cfg):
    for tag in ("<type>Chat</type>", "<type>Reasoning</type>", "<rubric>", "<justify>",
                "<solution>", "<eval>", "<quote_A>", "<summary_A>", "<quote_B>", "<summary_B>",
                "<answer>[[A]]</answer>", "<answer>[[B]]</answer>"):
        assert tag in cfg.prompt.system


def test_pairs_of_one_prompt_stay_on_one_side_and_the_fraction_holds(cfg):
    """Prompt groups of 1 to 6 pairs (a multi-pair source) and a group spanning two sources:
    no group is cut, and each source gets its share within one group's size."""
    out, group_of = [], {}
    for i in range(300):
        for k in range(1 + i % 6):
            pid = f"uf-{i:03d}-{k}"
            group_of[pid] = f"uf-{i:03d}-0"
            out.append({"pair_id": pid, "source": "uf", "source_index": i, "pair_index": k,
                        "prompt_group": group_of[pid]})
    for i in range(100):  # another source; its first 10 rows share a prompt with uf's groups
        pid = f"t-{i:03d}"
        group_of[pid] = f"uf-{i:03d}-0" if i < 10 else pid
        out.append({"pair_id": pid, "source": "t", "source_index": i, "pair_index": 0,
                    "prompt_group": group_of[pid] if i < 10 else None})
    table = pa.Table.from_pylist(out)
    got = run_split(cfg, table, 0.12).to_pylist()
    sides: dict[str, set[str]] = {}
    for r in got:
        sides.setdefault(group_of[r["pair_id"]], set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values()), "a prompt group is never cut"
    n = Counter(r["source"] for r in got)
    sft = Counter(r["source"] for r in got if r["split"] == "sft")
    assert abs(sft["uf"] - round(0.12 * n["uf"])) <= 6
    assert abs(sft["t"] - round(0.12 * n["t"])) <= 10
    assert 0 < sum(s == {"sft"} for s in sides.values()) < len(sides)
