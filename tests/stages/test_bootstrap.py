"""Pass 2: the rows the filter rejected, asked again of `teacher2` with the flawed trace and
the correct verdict, and checked for leaning on that hint."""

from __future__ import annotations

import pytest

from pipeline.engine.config import ConfigError
from pipeline.engine.schema import ALIVE, REJECTED
from pipeline.output.formats import to_sft
from pipeline.plan import make_plan
from pipeline.rules.templates import fill
from pipeline.settings import load_config
from stages.bootstrap import Bootstrap

from fake_openai import FakeOpenAI, completion
from judged import rejected_by_filter, row, table, trace


def test_pass2_asks_teacher2_with_the_flawed_trace_and_the_correct_verdict(ctx):
    rows = table([rejected_by_filter(0, "model_b", said="A"),
                  row(1, "model_a", trace=trace("A"), teacher_model="judge-1", verdict="A")])
    with FakeOpenAI(lambda body, n: completion(trace("B"))) as server:
        ctx.endpoints["bootstrap"] = server.base_url
        out = {r["source_index"]: r for r in Bootstrap(None, ctx).process(rows).to_pylist()}
    assert len(server.requests) == 1, "only the rejected row is asked again"
    req = server.requests[0]
    assert req["model"] == "judge-2"
    sent = req["messages"]
    assert sent[:2] == rows.to_pylist()[0]["context_messages"]
    assert sent[2] == {"role": "assistant", "content": trace("A")}
    assert sent[3]["role"] == "user" and "Chatbot B" in sent[3]["content"]
    assert sent[3]["content"] == fill(ctx.cfg.prompt.hint, {"label": "B"})
    fixed = out[0]
    assert (fixed["outcome"], fixed["pass_index"], fixed["teacher_model"]) == (ALIVE, 2, "judge-2")
    assert fixed["pass1"] == {"teacher_model": "judge-1", "verdict": "A", "reason": "wrong_verdict",
                              "prompt_tokens": 100, "completion_tokens": 50,
                              "cache_read_tokens": None}
    assert out[1]["outcome"] == ALIVE and out[1]["pass_index"] is None, "kept rows are untouched"


def test_pass2_rejects_wrong_verdicts_and_hint_leaks(ctx):
    replies = {0: trace("A"), 1: trace("B", note="As the hint says, Chatbot B is right."),
               2: trace("B", note="My previous evaluation was wrong.")}
    rows = table([rejected_by_filter(i, "model_b", said="A") for i in replies])

    def reply(body, n):
        i = int(body["messages"][1]["content"].split("Question ")[1].split(":")[0])
        return completion(replies[i])

    with FakeOpenAI(reply) as server:
        ctx.endpoints["bootstrap"] = server.base_url
        out = {r["source_index"]: r for r in Bootstrap(None, ctx).process(rows).to_pylist()}
    assert (out[0]["outcome"], out[0]["reason"]) == (REJECTED, "wrong_verdict")
    assert out[0]["detail"] == "pass 2: said A, winner is B; pass 1: wrong_verdict"
    assert (out[1]["reason"], out[2]["reason"]) == ("hint_leak", "hint_leak")
    assert "hint" in out[1]["detail"] and "earlier judgement" in out[2]["detail"]
    assert all(r["decided_by"] == "bootstrap" and r["pass_index"] == 2 for r in out.values())


def test_sft_rows_never_contain_the_hint(ctx):
    rows = table([rejected_by_filter(0, "model_b", said="A")])
    with FakeOpenAI(lambda body, n: completion(trace("B"))) as server:
        ctx.endpoints["bootstrap"] = server.base_url
        kept = Bootstrap(None, ctx).process(rows).to_pylist()
    sft = to_sft(kept).to_pylist()[0]
    hint = fill(ctx.cfg.prompt.hint, {"label": "B"})
    assert sft["messages"] == [*kept[0]["context_messages"],
                               {"role": "assistant", "content": trace("B")}]
    assert sft["pass_index"] == 2 and sft["teacher_model"] == "judge-2"
    texts = [m["content"] for m in sft["messages"] + sft["context_messages"] + sft["judge_response"]]
    assert not any(hint in t or "wrong verdict" in t for t in texts)


def test_pass2_must_come_after_the_filter():
    with pytest.raises(ConfigError, match="'bootstrap' retries rows of 'verdict_filter'"):
        make_plan(load_config(["~recipe.stages.verdict_filter"]))
