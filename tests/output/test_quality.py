"""The manifest's quality report: verdict accuracy per domain, pass and teacher, and the
position balance of the kept rows."""

from __future__ import annotations

from collections import Counter

from pipeline.engine.schema import SFT
from pipeline.output.manifest import Tally, quality


def test_quality_report_has_domains_passes_and_position_balance():
    tally = Tally()
    base = {"source": "s", "split": SFT, "reason": "", "decided_by": "", "completion_tokens": 10}
    tally.add([
        base | {"outcome": "kept", "domain": "math", "winner": "model_a", "verdict": "A",
                "teacher_model": "t1", "pass_index": 1, "trace": "x", "source_index": 0},
        base | {"outcome": "kept", "domain": "chat", "winner": "model_b", "verdict": "B",
                "teacher_model": "t2", "pass_index": 2, "trace": "y", "source_index": 1,
                "pass1": {"teacher_model": "t1", "verdict": "A", "reason": "wrong_verdict",
                          "prompt_tokens": 5, "completion_tokens": 6}},
        base | {"outcome": "rejected", "domain": "chat", "winner": "model_a", "verdict": "B",
                "teacher_model": "t1", "pass_index": 1, "trace": "z", "reason": "wrong_verdict",
                "source_index": 2},
    ])
    q = quality(tally)
    by_domain = {(a["domain"], a["pass"], a["teacher"]): (a["judged"], a["verdict_correct"], a["kept"])
                 for a in q["verdict_accuracy_by_domain"]}
    assert by_domain == {("chat", 1, "t1"): (2, 0, 0), ("chat", 2, "t2"): (1, 1, 1),
                         ("math", 1, "t1"): (1, 1, 1)}
    assert q["position_balance"] == [{"part": SFT, "source": "s", "winner_a": 1, "winner_b": 1,
                                      "share_a": 0.5}]
    calls = Counter({(u, m): n for (u, m, f), n in tally.usage.items() if f == "calls"})
    assert calls == Counter({("pass 1", "t1"): 3, ("pass 2", "t2"): 1})
