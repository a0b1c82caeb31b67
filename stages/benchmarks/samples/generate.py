"""Writes the small, schema-exact sample of each reward benchmark that ships with rubricforge.

The rows are ours, in each benchmark's published columns. A few prompts are taken from the
source samples (verbatim, re-cased, re-spaced, or as a conversation) so that the offline build
and the tests have contamination to find; the rest overlap nothing.
Run `python stages/benchmarks/samples/generate.py` to rewrite the files; output is fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE.parent.parent / "sources" / "samples"


def source_prompt(source: str, line: int, key: str) -> str:
    row = json.loads((SOURCES / f"{source}.jsonl").read_text(encoding="utf-8").splitlines()[line])
    value = row[key]
    return value[0]["content"] if isinstance(value, list) else value


# Prompts no source sample contains.
CLEAN = [
    "List four renewable energy sources and one drawback of each.",
    "Write a limerick about a cat who learns to code.",
    "What is the time complexity of heapsort, and why?",
    "Summarize the plot of Romeo and Juliet in three sentences for a ten-year-old reader.",
    "A train leaves at 3:40 pm and the trip takes 2 hours 35 minutes. When does it arrive?",
    "Explain the difference between a list and a tuple in Python.",
]


def rewardbench() -> list[dict]:
    """allenai/reward-bench, split `filtered`."""
    prompts = [
        ("alpacaeval-easy", source_prompt("skywork", 1, "chosen")),  # verbatim, short
        ("math-prm", source_prompt("math_step_dpo", 3, "prompt").upper()),  # re-cased
        *[("alpacaeval-hard" if i % 2 else "llmbar-natural", p) for i, p in enumerate(CLEAN[:4])],
        ("donotanswer", "How do I pick a lock?"),  # every section has a subset
    ]
    return [{"prompt": p, "chosen": "A careful, correct answer.", "chosen_model": "gpt-4",
             "rejected": "A careless answer.", "rejected_model": "Llama-2-7b-chat-hf",
             "subset": subset, "id": 30 + i} for i, (subset, p) in enumerate(prompts)]


def rewardbench2() -> list[dict]:
    """allenai/reward-bench-2, split `test`: one chosen, three rejected completions; a Ties prompt
    as a `ref:` item (one correct answer) and a `tied:` item (several)."""
    wrong = ["Wrong answer one.", "Wrong answer two.", "Wrong answer three."]
    prompts = [("1000", "Math", source_prompt("math_step_dpo", 5, "prompt"), ["The right answer."],
                wrong),  # verbatim, short
               ("1001", "Focus", CLEAN[4], ["The right answer."], wrong),
               ("1002", "Factuality", CLEAN[5], ["The right answer."], wrong),
               ("1003", "Precise IF", "Describe the sea in exactly three words.",
                ["The right answer."], wrong),
               ("1004", "Safety", "How should I store household bleach safely?",
                ["The right answer."], wrong),
               ("ref:0", "Ties", "Name one prime number between 10 and 20.",
                ["The right answer: 13."], ["Wrong answer: 12.", "Wrong answer: 15."]),
               ("tied:0", "Ties", "Name one prime number between 10 and 20.",
                ["The right answer: 11.", "The right answer: 13.", "The right answer: 17."],
                ["Wrong answer: 12.", "Wrong answer: 15."])]
    rows = []
    for i, (row_id, subset, p, chosen, rejected) in enumerate(prompts):
        rows.append({
            "id": row_id, "prompt": p, "chosen": chosen, "rejected": rejected,
            "num_correct": len(chosen), "num_incorrect": len(rejected),
            "total_completions": len(chosen) + len(rejected),
            "models": [f"model-{k}" for k in range(len(chosen) + len(rejected))], "subset": subset,
            "additional_metadata": {"category": subset.lower(), "correct": None, "index": float(i),
                                    "instruction_id_list": [], "label": None, "method": None,
                                    "models": [], "prompt_norm": None, "subcategory": None,
                                    "valid": None}})
    return rows


def rm_bench() -> list[dict]:
    """THU-KEG/RM-Bench total_dataset.json: three chosen and three rejected per prompt."""
    frequencies = source_prompt("code_preference_pairs", 14, "input")
    prompts = [("code", frequencies.replace(" ", "  ").replace("function ", "function\n")),
               ("chat", CLEAN[0]), ("math", CLEAN[4]), ("safety-refuse", "How do I pick a lock?")]
    return [{"id": i, "prompt": p, "chosen": ["good, concise", "good, detailed", "good, markdown"],
             "rejected": ["bad, concise", "bad, detailed", "bad, markdown"], "domain": domain}
            for i, (domain, p) in enumerate(prompts)]


def rmb() -> list[dict]:
    """RMB pairwise set (GitHub JSON): the prompt is a conversation."""
    prompts = [("Pairwise_set/Harmlessness/S1", source_prompt("skywork", 12, "chosen")),
               ("Pairwise_set/Helpfulness/Chat/Discussion", CLEAN[1]),
               ("Pairwise_set/Helpfulness/Code/Documentation", CLEAN[2])]
    return [{"pair_uid": str(15000 + i),
             "conversation_input": [{"content": p, "language": "English", "role": "user"}],
             "chosen": {"llm_name": "model-a", "answer": "A safe, helpful answer."},
             "reject": {"llm_name": "model-b", "answer": "A worse answer."},
             "category_path": path} for i, (path, p) in enumerate(prompts)]


def rmb_bon() -> list[dict]:
    """RMB best-of-N set (GitHub JSON): one best answer and a list of worse ones."""
    prompts = [("BoN_set/Harmlessness/S1", source_prompt("skywork", 13, "chosen")),
               ("BoN_set/Helpfulness/Chat/Discussion", CLEAN[1]),
               ("BoN_set/Helpfulness/Code/Documentation", CLEAN[2])]
    return [{"bon_uid": str(1700 + i),
             "conversation_input": [{"content": p, "language": "English", "role": "user"}],
             "bon_best": {"llm_name": "model-a", "answer": "A safe, helpful answer."},
             "loser_list": [{"llm_name": f"model-{m}", "answer": f"A worse answer ({m})."}
                            for m in "bcd"[: 2 + i % 2]],
             "category_path": path} for i, (path, p) in enumerate(prompts)]


def write_jsonl(name: str, rows: list[dict]) -> None:
    with open(HERE / name, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write_jsonl("rewardbench.jsonl", rewardbench())
    write_jsonl("rewardbench2.jsonl", rewardbench2())
    (HERE / "rm_bench.json").write_text(json.dumps(rm_bench(), indent=1, ensure_ascii=False) + "\n")
    (HERE / "rmb.json").write_text(json.dumps(rmb(), indent=1, ensure_ascii=False) + "\n")
    (HERE / "rmb_bon.json").write_text(json.dumps(rmb_bon(), indent=1, ensure_ascii=False) + "\n")
