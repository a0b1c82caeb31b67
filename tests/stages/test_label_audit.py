"""The teachers' unhinted judgements as evidence on a label: a pair pass 1 judged wrong is judged
once more without the hint, and contested only when that judgement also picks the rejected
answer."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.engine.config import ConfigError
from pipeline.engine.schema import ALIVE, REJECTED, conform
from pipeline.engine.stage import BuildContext
from pipeline.plan import make_plan
from pipeline.rules.judge_prompt import judge_messages, placed
from pipeline.settings import load_config
from stages.label_audit import LabelAudit
from stages.label_check import LabelCheck

from fake_openai import FakeOpenAI, completion
from judged import COLUMNS, rejected_by_filter, row, trace

AUDITED = (*COLUMNS, *LabelCheck.columns)


def checked(rows: list[dict]) -> pa.Table:
    """Rows as the label check leaves them (no reference: status unset)."""
    return conform(pa.Table.from_pylist([dict.fromkeys(LabelCheck.columns) | r for r in rows]),
                   AUDITED)


def run(ctx, rows, reply) -> tuple[dict, FakeOpenAI]:
    with FakeOpenAI(reply) as server:
        ctx.endpoints["label_audit"] = server.base_url
        got = LabelAudit(LabelAudit.Params(), ctx).process(checked(rows)).to_pylist()
    return {r["source_index"]: r for r in got}, server


def test_without_an_audit_teacher_pass_1s_teacher_judges_the_swapped_order(ctx):
    """Pairs 0, 1 and 4 were judged wrong (B is right, pass 1 said A). Swapped, B's answer is
    shown as A: for pair 0 the teacher says B again (the rejected answer in both orders:
    contested), for pair 1 it says A (it agrees: the label stands), for pair 4 nothing. Pair 2
    was judged right, pair 3's label a reference answer settled: neither is asked."""
    said = {0: "B", 1: "A"}

    def reply(body, n):
        i = int(body["messages"][1]["content"].split("Question ")[1].split(":")[0])
        return completion(trace(said[i]) if i in said else "I cannot decide.")

    rows = [rejected_by_filter(0, "model_b", said="A"), rejected_by_filter(1, "model_b", said="A"),
            row(2, "model_a", trace=trace("A"), teacher_model="judge-1", verdict="A"),
            rejected_by_filter(3, "model_b", said="A") | {"label_status": "verified",
                                                          "label_evidence": "reference: ..."},
            rejected_by_filter(4, "model_b", said="A")]
    out, server = run(ctx, rows, reply)
    assert len(server.requests) == 3 and {r["model"] for r in server.requests} == {"judge-1"}
    swapped = placed(rows[0], "model_a")
    sent = [r["messages"] for r in server.requests]  # sent together: in any order
    assert judge_messages(rows[0]["prompt"], *swapped, ctx.cfg.prompt) in sent
    contested = out[0]
    assert (contested["outcome"], contested["reason"], contested["decided_by"]) == (
        REJECTED, "contested_label", "label_audit")
    assert contested["label_status"] == "contested"
    assert contested["detail"] == contested["label_evidence"] == (
        "teachers: pass 1 (judge-1) and the swapped order (judge-1) both chose the rejected answer")
    assert contested["audit"]["swapped"] and not contested["audit"]["agrees"]
    split = out[1]
    assert (split["outcome"], split["reason"], split["decided_by"]) == (
        REJECTED, "wrong_verdict", "verdict_filter"), "pass 2 may still take it"
    assert split["label_status"] == "unverified" and split["audit"]["agrees"]
    assert "the swapped order (judge-1) the chosen one" in split["label_evidence"]
    assert (out[2]["outcome"], out[2]["label_status"]) == (ALIVE, "verified")
    assert out[2]["label_evidence"] == "teachers: pass 1 (judge-1) chose the chosen answer"
    assert out[3]["label_status"] == "verified" and out[3]["audit"] is None
    # a second judgement without a verdict is no evidence either way
    assert (out[4]["reason"], out[4]["label_status"]) == ("wrong_verdict", "unverified")
    assert out[4]["label_evidence"].endswith("the swapped order (judge-1) no verdict (no_verdict)")


def test_an_audit_teacher_is_asked_the_same_prompt_and_mark_keeps_the_pair_for_pass_2(tmp_path):
    cfg = load_config(["teacher=openai", "teacher.model=judge-1", "+audit=openai",
                       "audit.model=auditor", f"teacher.cache_dir={tmp_path}/cache",
                       "audit.max_attempts=1"])
    ctx = BuildContext(cfg)
    rows = [rejected_by_filter(0, "model_b", said="A")]
    with FakeOpenAI(lambda body, n: completion(trace("A"))) as server:
        ctx.endpoints["label_audit"] = server.base_url
        stage = LabelAudit(LabelAudit.Params(sft="mark"), ctx)
        got = stage.process(checked(rows)).to_pylist()[0]
    assert [r["model"] for r in server.requests] == ["auditor"]
    assert server.requests[0]["messages"] == rows[0]["context_messages"]
    assert got["label_status"] == "contested" and got["audit"]["teacher_model"] == "auditor"
    assert "the audit teacher (auditor)" in got["label_evidence"]
    assert (got["reason"], got["decided_by"]) == ("wrong_verdict", "verdict_filter"), \
        "marked, not dropped: pass 2 retries it"


def test_the_audit_needs_the_label_check_and_a_known_policy():
    on = "recipe.stages.label_audit={}"
    with pytest.raises(ConfigError, match="needs column.*label_status.*label_check"):
        make_plan(load_config([on, "recipe.stages.label_check=null"]))
    with pytest.raises(ConfigError, match="sft='keep'"):
        make_plan(load_config(["recipe.stages.label_audit={sft: keep}"]))
    plan = make_plan(load_config([on]))
    names = [s.name for s in plan.stages]
    assert names.index("verdict_filter") < names.index("label_audit") < names.index("bootstrap")
