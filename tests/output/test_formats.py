"""The sft/ and rl/ rows as trainers read them, and the way back to the raw row."""

from __future__ import annotations

from pipeline.output.formats import RL_SCHEMA, SFT_SCHEMA, to_rl, to_sft

PROMPT = [{"role": "system", "content": "judge"}, {"role": "user", "content": "A or B?"}]


def kept(index, pair=None):
    return {"pair_id": f"p{index}", "source": "ultrafeedback", "subset": "s", "domain": "chat",
            "license": "mit", "source_index": index, "pair_index": pair, "winner": "model_a",
            "context_messages": PROMPT, "trace": "<answer>[[A]]</answer>", "num_tokens": 9,
            "teacher_model": "judge", "pass_index": 1}


def test_every_kept_row_names_its_raw_row_and_pair():
    """`source_index` is the row of the source as read (the manifest's `read` names the files),
    `pair_index` the pair within it: one lookup leads back, no pair_id to recompute."""
    rows = [kept(12, 3), kept(40)]
    for table, schema in ((to_sft(rows), SFT_SCHEMA), (to_rl(rows, 0), RL_SCHEMA)):
        assert table.schema == schema
        assert table.select(["source", "source_index", "pair_index"]).to_pylist() == [
            {"source": "ultrafeedback", "source_index": 12, "pair_index": 3},
            {"source": "ultrafeedback", "source_index": 40, "pair_index": 0}]
