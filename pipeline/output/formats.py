"""Rows as the trainers want them: sft/ for TRL and OpenRLHF, rl/ for verl and RM-R1's scripts."""

from __future__ import annotations

import pyarrow as pa

from pipeline.engine.schema import MESSAGES
from pipeline.rules.verdict import SWAPPED

LINEAGE = ("pair_id", "source", "subset", "domain", "license")
# The raw row a kept row came from, in one lookup: row `source_index` of the source as read,
# and its `pair_index`-th pair (0 for sources with one pair per row).
ORIGIN = [("source_index", pa.int64()), ("pair_index", pa.int64())]

SFT_SCHEMA = pa.schema([
    ("messages", MESSAGES),          # TRL SFTTrainer: judge prompt + the teacher's trace
    ("context_messages", MESSAGES),  # the judge prompt alone (OpenRLHF --data.input_key)
    ("judge_response", MESSAGES),    # the trace as one assistant turn (--data.output_key)
    ("winner", pa.string()),
    *[(c, pa.string()) for c in LINEAGE],
    *ORIGIN,
    ("teacher_model", pa.string()),
    ("pass_index", pa.int64()),
    ("prompt_tokens", pa.int64()),
    ("completion_tokens", pa.int64()),
    ("latency_s", pa.float64()),
    ("num_tokens", pa.int64()),      # judge prompt + trace, chat template applied
    ("quote_fidelity", pa.float64()),  # its lowest quote's share of words found in the answer
    ("label_status", pa.string()),   # verified, unverified or contested (null: not checked)
])

RL_SCHEMA = pa.schema([
    ("data_source", pa.string()),
    ("prompt", MESSAGES),
    ("ability", pa.string()),
    ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
    ("extra_info", pa.struct([("split", pa.string()), ("index", pa.int64()),
                              ("pair_id", pa.string()), ("source", pa.string())])),
    ("context_messages", MESSAGES),
    ("winner", pa.string()),
    *[(c, pa.string()) for c in LINEAGE],
    *ORIGIN,
    ("num_tokens", pa.int64()),      # the prompt with the generation prompt added
    ("label_status", pa.string()),   # verified, unverified or contested (null: not checked)
])


def to_sft(rows: list[dict]) -> pa.Table:
    """One row per kept trace; a pair kept in both orders gives a second row right after its
    first, with A and B swapped, the other verdict and the swapped judgement's figures."""
    out = []
    for r in rows:
        out.append(_sft_row(r, r["context_messages"] + [{"role": "assistant", "content": r["trace"]}]))
        if r.get("swap_messages"):
            swap = r["swap"]
            out.append(_sft_row(r, r["swap_messages"]) | {
                "winner": SWAPPED[r["winner"]], "teacher_model": swap["teacher_model"],
                "pass_index": 1, "prompt_tokens": swap["prompt_tokens"],
                "completion_tokens": swap["completion_tokens"], "latency_s": None,
                "num_tokens": r.get("swap_num_tokens"), "quote_fidelity": swap.get("quote_fidelity")})
    return pa.Table.from_pylist(out, schema=SFT_SCHEMA)


def _sft_row(r: dict, messages: list[dict]) -> dict:
    return {"messages": messages, "context_messages": messages[:-1], "judge_response": messages[-1:],
            **{k: r[k] for k in SFT_SCHEMA.names if k in r and k not in
               ("messages", "context_messages", "judge_response")},
            "pair_index": r.get("pair_index") or 0}


def to_rl(rows: list[dict], first_index: int) -> pa.Table:
    out = []
    for i, r in enumerate(rows):
        out.append({
            "data_source": f"rubricforge/{r['source']}", "prompt": r["context_messages"],
            "ability": r["domain"],
            "reward_model": {"style": "rule", "ground_truth": r["winner"]},
            "extra_info": {"split": "train", "index": first_index + i, "pair_id": r["pair_id"],
                           "source": r["source"]},
            "context_messages": r["context_messages"], "winner": r["winner"],
            **{k: r[k] for k in LINEAGE}, "source_index": r["source_index"],
            "pair_index": r.get("pair_index") or 0, "num_tokens": r.get("num_tokens"),
            "label_status": r.get("label_status"),
        })
    return pa.Table.from_pylist(out, schema=RL_SCHEMA)
