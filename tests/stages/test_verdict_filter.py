"""Pass 1's filter as the build runs it: the checks on each distillation row's trace, with what
the trace may quote taken from the row (the answers as placed, earlier turns, the question),
and each trace's lowest quote fidelity kept beside it."""

from __future__ import annotations

import pytest

from pipeline.engine.config import ConfigError
from pipeline.engine.schema import ALIVE, REJECTED, RL
from pipeline.engine.stage import BuildContext
from pipeline.plan import make_plan
from pipeline.settings import load_config
from stages.verdict_filter import VerdictFilter

from conftest import messages
from judged import row, table, trace


def quoting(label: str, quote_a: str, quote_b: str = "Sydney") -> str:
    return trace(label).replace("<summary_A>names a city</summary_A>",
                                f"<quote_A>{quote_a}</quote_A>").replace(
        "<summary_B>says Sydney</summary_B>", f"<quote_B>{quote_b}</quote_B>")


def filtered(rows: list[dict], ctx) -> dict[int, dict]:
    out = VerdictFilter(None, ctx).process(table(rows)).to_pylist()
    return {r["source_index"]: r for r in out}


def test_each_trace_keeps_its_lowest_quote_fidelity_kept_or_rejected(ctx):
    # row i: Chatbot A (the winner) answered "Canberra (i).", Chatbot B "Sydney (i)."
    out = filtered([
        row(0, "model_a", trace=quoting("A", "Canberra (0).")),
        row(1, "model_a", trace=quoting("A", '"Canberra" [sic] "(1)"')),  # typed loosely
        row(2, "model_a", trace=quoting("A", "Canberra (7).")),  # a number it does not have
        row(3, "model_a", trace=quoting("A", "Sydney (3).")),  # the other answer's words
        row(4, "model_a", trace=quoting("A", "Canberra is (4).")),  # 1 of 3 words not there
        row(5, "model_a", trace=trace("A")),  # summaries only: nothing to measure
        row(6, "model_b", trace=quoting("A", "Sydney (6).", "Canberra (6).")),  # wrong verdict
        row(7, "model_a", split=RL),  # not judged at all
    ], ctx)
    assert [(out[i]["outcome"], out[i]["reason"] or "", out[i]["quote_fidelity"]) for i in range(8)] == [
        (ALIVE, "", 1.0), (ALIVE, "", 1.0), (REJECTED, "misquote", 0.0),
        (REJECTED, "misquote", 0.5), (REJECTED, "misquote", 0.6667), (ALIVE, "", None),
        (REJECTED, "wrong_verdict", 1.0), (ALIVE, "", None)]
    assert "the number '7'" in out[2]["detail"]
    assert "is Chatbot B's answer's text" in out[3]["detail"]
    assert "67% of its words are in Chatbot A's answer (at least 70% wanted)" in out[4]["detail"]


def test_a_quote_of_an_earlier_turn_is_the_chatbots_own_and_the_question_is_not(ctx):
    """In a multi-turn pair, each chatbot's conversation holds the earlier assistant turns: a
    judge may quote them as that chatbot's words, but not the client's turns."""
    prompt = messages(("user", "Name a large city in Australia."),
                      ("assistant", "Melbourne is a large city with many trams."),
                      ("user", "Which city is the capital of Australia?"))
    earlier = row(0, "model_a", prompt=prompt,
                  trace=quoting("A", "Melbourne is a large city with many trams."))
    client = row(1, "model_a", prompt=prompt,
                 trace=quoting("A", "Which city is the capital of Australia?"))
    out = filtered([earlier, client], ctx)
    assert (out[0]["outcome"], out[0]["quote_fidelity"]) == (ALIVE, 1.0)
    assert out[1]["reason"] == "misquote" and "the question's text" in out[1]["detail"]


def test_the_threshold_is_the_prompts_setting_and_checked_before_any_work(tmp_path):
    loose = row(0, "model_a", trace=quoting("A", "Canberra is (0)."))  # fidelity 0.67
    strict = BuildContext(load_config(["prompt.min_quote_fidelity=0.5"]))
    assert filtered([loose], strict)[0]["outcome"] == ALIVE
    with pytest.raises(ConfigError, match=r"prompt.min_quote_fidelity is 1.5: set a share"):
        make_plan(load_config(["prompt.min_quote_fidelity=1.5"]))
