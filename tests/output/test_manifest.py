"""The manifest's accounting: every input row in exactly one place, and totals that add up.
End-to-end builds check it too; these find a double count or a lost row in seconds."""

from __future__ import annotations

import pytest

from pipeline.engine.schema import DEDUPLICATED, KEPT, QUARANTINED, REJECTED
from pipeline.output.manifest import Tally, build_manifest
from pipeline.rules.trace_checks import check_rules
from pipeline.settings import load_config

CFG = load_config([])


def fate(source, index, outcome, split=None, reason="", stage="", pair=0, winner="model_a"):
    return {"source": source, "source_index": index, "pair_index": pair, "outcome": outcome,
            "split": split, "reason": reason, "decided_by": stage, "winner": winner}


def rows_of_a_build():
    """Two sources: `a` one pair per row (6 rows), `b` up to three pairs per row (2 rows)."""
    return [
        fate("a", 0, KEPT, "sft"), fate("a", 1, KEPT, "rl", winner="model_b"),
        fate("a", 2, REJECTED, "sft", "wrong_verdict", "verdict_filter"),
        fate("a", 3, QUARANTINED, reason="empty_field", stage="source:a"),
        fate("a", 4, DEDUPLICATED, reason="exact_dup", stage="exact_dedup"),
        fate("a", 5, REJECTED, "rl", "contaminated", "decontaminate"),
        fate("b", 0, KEPT, "rl"), fate("b", 0, KEPT, "rl", pair=1), fate("b", 0, KEPT, "rl", pair=2),
        fate("b", 1, QUARANTINED, reason="bad_type", stage="source:b"),
    ]


def manifest(rows, inputs=None, parts=1):
    """The manifest of these final rows, tallied by `parts` writers and merged (as the build
    does, one writer per output part)."""
    tally = Tally()
    for k in range(parts):
        part = Tally()
        part.add(rows[k::parts])
        tally.merge(part)
    order = ["collect", "exact_dedup", "decontaminate", "verdict_filter"]
    return build_manifest(CFG, inputs or {"a": 6, "b": 2}, order, tally, {})


@pytest.mark.parametrize("parts", [1, 3])
def test_every_row_once_is_balanced_and_the_totals_add_up(parts):
    m = manifest(rows_of_a_build(), parts=parts)
    assert m["balanced"]
    assert m["accounting"]["a"] == {"input_rows": 6, "kept_sft": 1, "kept_rl": 1, REJECTED: 2,
                                    QUARANTINED: 1, DEDUPLICATED: 1, "accounted_rows": 6,
                                    "balanced": True}
    # a source that gives several pairs per row counts pairs, and says so
    assert m["accounting"]["b"] == {"input_rows": 2, "kept_rl": 3, QUARANTINED: 1,
                                    "accounted_rows": 4, "pairs": 4, "balanced": True}
    assert m["totals"] == {"kept_sft": 1, "kept_rl": 4, REJECTED: 2, QUARANTINED: 2,
                           DEDUPLICATED: 1}
    assert m["sft_rows"] == 1
    # each stage's rows out are its rows in less what it removed, in order
    flow = [(s["stage"], s["rows_in"], s["rows_out"]) for s in m["stages"]]
    assert flow == [("collect", 10, 8), ("exact_dedup", 8, 7), ("decontaminate", 7, 6),
                    ("verdict_filter", 6, 5)]
    assert sum(r["rows"] for r in m["reasons"]) == 5


def test_a_row_counted_twice_is_not_balanced_even_when_the_counts_look_enough():
    """A rejected row written twice makes `accounted >= input` true; it is still a double count."""
    rows = rows_of_a_build()
    rows.append(rows[2])
    m = manifest(rows)
    assert not m["balanced"] and not m["accounting"]["a"]["balanced"]
    assert m["accounting"]["a"]["duplicated_rows"] == {"rows": 1, "first": ["a#2"]}
    assert m["accounting"]["b"]["balanced"]


def test_a_row_in_two_places_and_a_lost_row_are_both_named():
    rows = [r for r in rows_of_a_build() if r["source_index"] != 3 or r["source"] != "a"]
    rows.append(fate("a", 1, REJECTED, "rl", "over_limit", "split"))  # also kept in rl
    acc = manifest(rows)["accounting"]["a"]
    assert acc["accounted_rows"] == 6 and not acc["balanced"]  # the total alone hides both
    assert acc["missing_rows"] == {"rows": 1, "first": ["a#3"]}
    assert acc["duplicated_rows"] == {"rows": 1, "first": ["a#1"]}


def test_further_pairs_must_appear_once_and_belong_to_a_row_that_was_read():
    rows = rows_of_a_build()
    twice = manifest([*rows, fate("b", 0, REJECTED, "rl", "x", "split", pair=2)])
    assert twice["accounting"]["b"]["duplicated_rows"] == {"rows": 1, "first": ["b#0.2"]}
    stray = manifest([*rows, fate("b", 7, KEPT, "rl", pair=1), fate("a", 9, KEPT, "rl")])
    assert stray["accounting"]["b"]["unknown_rows"] == {"rows": 1, "first": ["b#7.1"]}
    assert stray["accounting"]["a"]["unknown_rows"] == {"rows": 1, "first": ["a#9"]}
    assert not stray["balanced"]


def teacher_row(index, outcome, reason="", stage="", pass1_reason=None, split="sft"):
    """A distillation row as the writer sees it: pass 1's answer, or pass 2's with pass 1's."""
    row = fate("a", index, outcome, split, reason, stage) | {
        "teacher_model": "judge-2" if pass1_reason else "judge-1", "verdict": "A",
        "pass_index": 2 if pass1_reason else 1, "trace": "t", "prompt_tokens": 10,
        "completion_tokens": 5, "cached": False, "teacher_error": None, "latency_s": 0.1}
    if pass1_reason:
        row["pass1"] = {"teacher_model": "judge-1", "verdict": "B", "reason": pass1_reason,
                        "prompt_tokens": 10, "completion_tokens": 5}
    return row


def test_what_the_filter_cost_counts_each_paid_answer_it_turned_away_per_pass():
    """Pass 1's reason counts also for a pair pass 2 took back; a row decided by a later stage
    (the token cap) is not the filter's; the card shows it beside the answers each pass got."""
    from pipeline.output.card import _filter_table

    rows = [teacher_row(0, KEPT),
            teacher_row(1, REJECTED, "misquote", "verdict_filter"),
            teacher_row(2, KEPT, pass1_reason="wrong_verdict"),
            teacher_row(3, REJECTED, "misquote", "bootstrap", pass1_reason="template_copy"),
            teacher_row(4, REJECTED, "over_token_limit", "token_lengths"),
            teacher_row(5, REJECTED, "wrong_verdict", "bootstrap", pass1_reason="misquote")]
    m = manifest(rows)
    assert m["quality"]["filter_rejections"] == [
        {"reason": "misquote", "pass 1": 2, "pass 2": 1},
        {"reason": "template_copy", "pass 1": 1, "pass 2": 0},
        {"reason": "wrong_verdict", "pass 1": 1, "pass 2": 1}]
    table = _filter_table(m["quality"]["filter_rejections"], m["teacher"]["by_call"],
                          check_rules(0.65))
    assert table.splitlines()[0] == "| reason | pass 1 | pass 2 | turns away |"
    assert "| **teacher answers** | 6 | 3 |  |" in table
    # each check says what it turns away at the threshold in force
    assert "| misquote | 2 | 1 | a quote with under 65% of its words in order" in table
    assert "| template_copy | 1 | 0 | an empty field, or 8 words of the instructions" in table


def test_the_quote_fidelity_spread_is_per_source_and_counts_kept_and_rejected_traces():
    from pipeline.output.card import quote_table

    rows = [teacher_row(i, KEPT) | {"quote_fidelity": f} for i, f in enumerate(
        [1.0, 1.0, 0.9, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])]
    rows += [teacher_row(10, REJECTED, "misquote", "verdict_filter") | {"quote_fidelity": 0.2},
             teacher_row(11, KEPT) | {"quote_fidelity": None},
             teacher_row(12, KEPT) | {"source": "b", "quote_fidelity": 0.8}]
    m = manifest(rows, {"a": 12, "b": 1}, parts=3)
    assert m["quality"]["quote_fidelity"] == [
        {"source": "a", "traces": 11, "min": 0.2, "p10": 0.75, "p50": 1.0, "exact": 8},
        {"source": "b", "traces": 1, "min": 0.8, "p10": 0.8, "p50": 0.8, "exact": 0}]
    table = quote_table(m["quality"]["quote_fidelity"])
    assert "| a | 11 | 0.20 | 0.75 | 1.00 | 8 (73%) |" in table


def test_the_funnel_counts_pairs_and_says_the_calls_apart():
    """Three pairs pass 2 asked again are judged pairs once each; the calls (6 + 3) are said
    beside the funnel, not added into it."""
    from pipeline.output.card import calls_line, funnel_rows

    rows = [teacher_row(0, KEPT), teacher_row(1, REJECTED, "misquote", "verdict_filter"),
            teacher_row(2, KEPT, pass1_reason="wrong_verdict"),
            teacher_row(3, REJECTED, "misquote", "bootstrap", pass1_reason="template_copy"),
            teacher_row(4, KEPT), teacher_row(5, KEPT, pass1_reason="misquote")]
    m = manifest(rows, {"a": 6})
    (row,) = funnel_rows(m)
    assert (row["input"], row["judged"], row["sft"], row["rejected_by_filter"]) == (6, 6, 4, 2)
    assert calls_line(m["teacher"]["by_call"]).startswith(
        "Every column counts pairs. Teacher calls, apart: pass 1 6, pass 2 3")


def test_a_pair_kept_in_both_orders_is_two_sft_rows_and_one_pair():
    rows = rows_of_a_build()
    rows[0] = rows[0] | {"swap_messages": [{"role": "user", "content": "j"},
                                           {"role": "assistant", "content": "t"}]}
    m = manifest(rows)
    assert m["balanced"] and m["totals"]["kept_sft"] == 1 and m["sft_rows"] == 2
    assert m["quality"]["kept_in_both_orders"] == {"a": 1}


def test_checked_labels_are_counted_per_source_with_the_contested_share_and_its_interval():
    from pipeline.cli import summary
    from pipeline.output.card import label_table

    def checked(i, status, source="m", outcome=KEPT, split="rl"):
        evidence = "" if status == "unverified" else f"reference: {status}"
        return fate(source, i, outcome, split, "contested_label" if outcome == REJECTED else "",
                    "label_check" if outcome == REJECTED else "") | {
            "label_status": status, "label_evidence": evidence}

    rows = ([checked(i, "verified") for i in range(30)]
            + [checked(30 + i, "contested", outcome=REJECTED) for i in range(10)]
            + [checked(40, "unverified")]
            + [checked(0, "unverified", source="chat"), checked(1, "unverified", source="chat")])
    m = manifest(rows, {"m": 41, "chat": 2}, parts=2)
    math, chat = m["quality"]["labels"]
    assert {k: math[k] for k in ("source", "evidence", "checked", "verified", "contested",
                                 "unverified", "share")} == {
        "source": "m", "evidence": "reference", "checked": 40, "verified": 30,
        "contested": 10, "unverified": 1, "share": 0.25}
    assert 0.14 < math["interval"][0] < 0.25 < math["interval"][1] < 0.41
    assert chat == {"source": "chat", "evidence": "", "checked": 0, "verified": 0,
                    "contested": 0, "unverified": 2, "share": None, "interval": None}
    table = label_table(m["quality"]["labels"], CFG)
    assert "| m | reference | 40 | 30 | 10 | 25.0% |" in table and "| chat |" not in table
    assert "in `sft` dropped (in `rejected/` as `contested_label`" in table
    # a source whose whole interval is above 5% is named in the build's summary
    said = summary(m, "out", 1.0, {})
    assert "labels: m: 10 of 40 checked (25%, 95%: " in said and "contested by its reference" \
        " answers (card: Labels)" in said


def test_the_teachers_evidence_is_a_kind_of_its_own_with_its_audit_calls():
    from pipeline.cli import summary
    from pipeline.output.card import label_table

    def judged(i, status, audit=None):
        outcome, reason, by = ((REJECTED, "contested_label", "label_audit") if status == "contested"
                               else (KEPT, "", ""))
        return fate("chat", i, outcome, "sft", reason, by) | {
            "label_status": status, "label_evidence": f"teachers: {status}",
            "teacher_model": "judge", "winner": "model_a", "verdict": "A", "pass_index": 1,
            "prompt_tokens": 10, "completion_tokens": 5, "audit": audit, "audit_cached": False}

    second = {"teacher_model": "judge", "verdict": "B", "swapped": True, "agrees": False,
              "prompt_tokens": 12, "completion_tokens": 6, "cache_read_tokens": None}
    rows = ([judged(i, "verified") for i in range(20)]
            + [judged(20 + i, "contested", second) for i in range(10)]
            + [judged(30, "unverified", second | {"agrees": True, "verdict": "A"})])
    m = manifest(rows, {"chat": 31}, parts=2)
    (chat,) = m["quality"]["labels"]
    assert (chat["evidence"], chat["checked"], chat["verified"], chat["contested"],
            chat["unverified"]) == ("teachers", 30, 20, 10, 1)
    audit = next(c for c in m["teacher"]["by_call"] if c["call"] == "audit")
    assert (audit["calls"], audit["prompt_tokens"], audit["completion_tokens"]) == (11, 132, 66)
    on = load_config(["recipe.stages.label_audit={}"])
    assert "the pass-1 teacher with Chatbot A and B swapped" in label_table(
        m["quality"]["labels"], on)
    assert "contested by the teachers' unhinted judgements" in summary(m, "out", 1.0, {})
