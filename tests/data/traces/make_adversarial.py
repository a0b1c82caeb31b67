"""Writes adversarial.jsonl: traces a careful reader would throw away, each made from one of the
real right-verdict traces in rmr1_rmb_logs.jsonl by one edit, so that everything but the flaw
is a strong judge's own writing. A row names its real trace (`made_from`, the same `origin`),
whose question, answers and winner it is checked against. Deterministic: run it again after
changing the real set.

    python tests/data/traces/make_adversarial.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).parent
LABEL = {"model_a": "A", "model_b": "B"}
# A sentence from the build's own judge prompt (conf/prompt/chain_of_rubrics.yaml), pasted into a
# rubric: the copy a weak teacher makes.
INSTRUCTION_SENTENCE = ("Back every point with the answers themselves: exact excerpts copied word "
                        "for word go in the quote tags.")
INVENTED = "This response guarantees a full refund within thirty days of purchase."


def words(text: str) -> str:
    """An independent, plain word view (not the checker's own) to make sure an edit invents."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def quotes(trace: str, side: str) -> list[re.Match[str]]:
    return list(re.finditer(rf"<quote_{side}>(.*?)</quote_{side}>", trace, re.S))


def replace_span(trace: str, m: re.Match[str], new: str) -> str:
    return trace[:m.start(1)] + new + trace[m.end(1):]


def altered(quote: str, answer: str) -> str:
    """The quote with one word changed, checked to be absent from the answer."""
    found = [m for m in re.finditer(r"[A-Za-z]{5,}", quote)]
    for m in found[len(found) // 2:] + found[:len(found) // 2]:
        candidate = quote[:m.start()] + "never" + quote[m.end():]
        if words(candidate) not in words(answer):
            return candidate
    raise ValueError("no word to change")


def other_side(answer: str, mine: str) -> str:
    """A sentence of the other answer that this side's answer does not contain."""
    for sentence in re.split(r"(?<=[.!?])\s+", answer):
        if len(sentence.split()) >= 6 and words(sentence) not in words(mine):
            return sentence.strip()
    raise ValueError("no sentence of the other answer to borrow")


def cases(r: dict) -> list[tuple[str, str, str]]:
    """(kind, expected reason, trace) for one real trace."""
    t, label = r["trace"], LABEL[r["winner"]]
    verdict = f"<answer>[[{label}]]</answer>"
    qa, qb = quotes(t, "A")[0], quotes(t, "B")[0]
    rubric_end = t.index("<justify>")
    # the judge's own closing sentence, looping (a decoding failure): prose, not a quote
    loop_line = re.sub(r"<[^>]+>", "", t[:t.rindex("</eval>")]).strip().splitlines()[-1]
    eval_start = t.index("<eval>") + len("<eval>")
    return [
        ("verdict_only", "bad_format", verdict),
        ("layout_copy", "template_copy",
         "<type>Chat</type>\n<rubric>\n...\n<justify>...</justify>\n</rubric>\n<eval>\n"
         "<quote_A>...</quote_A>\n<summary_B>...</summary_B>\n</eval>\n" + verdict),
        ("instructions_copy", "template_copy",
         t[:rubric_end] + INSTRUCTION_SENTENCE + "\n" + t[rubric_end:]),
        ("invented_quote", "misquote", replace_span(t, qa, INVENTED)),
        ("altered_quote", "misquote", replace_span(t, qb, altered(qb.group(1), r["answer_b"]))),
        ("other_sides_quote", "misquote",
         replace_span(t, qa, other_side(r["answer_b"], r["answer_a"]))),
        ("question_as_quote", "misquote", replace_span(t, qb, r["question"][:200])),
        ("repetition_loop", "repetitive",
         t[:eval_start] + ("\n" + loop_line) * 40 + t[eval_start:]),
    ]


def main() -> None:
    real = [json.loads(line) for line in (HERE / "rmr1_rmb_logs.jsonl").open()]
    good = [r for r in real if r["layout"] == "chain_of_rubrics" and r["logged_result"] == 1]
    with (HERE / "adversarial.jsonl").open("w") as out:
        for r in good:
            for kind, reason, trace in cases(r):
                row = {"made_from": r["origin"], "kind": kind, "expected_reason": reason,
                       "trace": trace}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
