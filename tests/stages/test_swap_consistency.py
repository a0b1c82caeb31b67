"""The order-swap check: each kept pair judged again with A and B swapped, kept when both
verdicts are right, and kept in both orders when both traces are good."""

from __future__ import annotations

import pyarrow as pa

from pipeline.engine.schema import ALIVE, REJECTED
from pipeline.output.formats import to_sft
from pipeline.output.manifest import Tally, quality
from pipeline.rules.verdict import WINNER_TO_LABEL
from stages.swap_consistency import SwapConsistency, SwapConsistencyParams
from stages.teacher import Teacher
from stages.verdict_filter import VerdictFilter

from fake_openai import FakeOpenAI, completion
from judged import row, table, trace


def test_a_judge_that_always_answers_a_keeps_nothing_with_swap_consistency(ctx):
    rows = table([row(i, "model_a" if i % 2 else "model_b") for i in range(6)])
    with FakeOpenAI(lambda body, n: completion(trace("A"))) as server:
        for name in ("teacher", "swap_consistency"):
            ctx.endpoints[name] = server.base_url
        judged = VerdictFilter(None, ctx).process(Teacher(None, ctx).process(rows))
        alive = judged.filter(pa.compute.equal(judged.column("outcome"), ALIVE))
        assert alive.num_rows == 3, "without the swap, position bias keeps every 'A' pair"
        swapped = SwapConsistency(SwapConsistencyParams(), ctx).process(alive).to_pylist()
    assert len(server.requests) == 6 + 3
    assert all(r["outcome"] == REJECTED and r["reason"] == "position_inconsistent" for r in swapped)
    assert swapped[0]["swap"]["verdict"] == "A" and swapped[0]["swap"]["consistent"] is False
    assert swapped[0]["detail"] == "A/B swapped: said A, winner is B"
    # the swapped request puts the better answer on the other side

    def canberra_first(body: dict) -> tuple[str, bool]:
        text = body["messages"][1]["content"]
        return text.split(":")[0], text.index("Canberra") < text.index("Sydney")

    first = dict(canberra_first(b) for b in server.requests[:6])
    for question, order in map(canberra_first, server.requests[6:]):
        assert order != first[question]


def test_a_consistent_judge_keeps_its_pairs(ctx):
    rows = table([row(i, "model_a" if i % 2 else "model_b") for i in range(4)])

    def right(body, n):  # the answer holding "Canberra" is better, wherever it stands
        text = body["messages"][1]["content"]
        return completion(trace("A" if text.index("Canberra") < text.index("Sydney") else "B"))

    with FakeOpenAI(right) as server:
        for name in ("teacher", "swap_consistency"):
            ctx.endpoints[name] = server.base_url
        judged = VerdictFilter(None, ctx).process(Teacher(None, ctx).process(rows))
        swapped = SwapConsistency(SwapConsistencyParams(), ctx).process(judged).to_pylist()
    assert all(r["outcome"] == ALIVE and r["swap"]["consistent"] for r in swapped)
    tally = Tally()
    tally.add([r | {"outcome": "kept"} for r in swapped])
    q = quality(tally)
    assert q["swap_agreement"] == [{"source": "s", "teacher": "judge-1", "judged": 4,
                                    "consistent": 4, "agreement": 1.0}]
    # both orders were right, so both traces are kept: one says A, the other B
    assert q["kept_in_both_orders"] == {"s": 4}
    assert {(p["winner_a"], p["winner_b"]) for p in q["position_balance"]} == {(4, 4)}
    sft = to_sft(swapped).to_pylist()
    assert len(sft) == 8
    for first, second in zip(sft[::2], sft[1::2], strict=True):
        assert {first["winner"], second["winner"]} == {"model_a", "model_b"}
        assert first["pair_id"] == second["pair_id"] and second["pass_index"] == 1
        said = f"[[{WINNER_TO_LABEL[second['winner']]}]]</answer>"
        assert second["judge_response"][0]["content"].endswith(said)
        assert second["messages"] == second["context_messages"] + second["judge_response"]
        assert second["context_messages"][1] != first["context_messages"][1]


def test_a_swapped_trace_is_kept_only_when_asked_and_good(ctx):
    """keep_both=false keeps one order; a consistent swapped verdict in a trace that fails a
    check (here an invented quote) is counted consistent but not kept as a second row."""
    rows = table([row(i, "model_a" if i % 2 else "model_b") for i in range(4)])

    def right(body, n):
        text = body["messages"][1]["content"]
        label = "A" if text.index("Canberra") < text.index("Sydney") else "B"
        invented = n > 4 and n % 2  # two of the four swapped judgements
        return completion(trace(label, "<quote_A>Perth</quote_A>" if invented else ""))

    with FakeOpenAI(right) as server:
        for name in ("teacher", "swap_consistency"):
            ctx.endpoints[name] = server.base_url
        judged = VerdictFilter(None, ctx).process(Teacher(None, ctx).process(rows))
        both = SwapConsistency(SwapConsistencyParams(), ctx).process(judged).to_pylist()
        one = SwapConsistency(SwapConsistencyParams(keep_both=False), ctx).process(judged)
    assert all(r["swap"]["consistent"] for r in both)
    assert sum(r["swap_messages"] is not None for r in both) == 2
    assert one.column("swap_messages").null_count == 4
    assert len(to_sft(one.to_pylist())) == 4 and len(to_sft(both)) == 6
