"""The columns rows carry through the build, with one Arrow type each.

Stages name the columns they read and write; the engine checks those names against this table
before a build starts and checks the types of every batch a stage returns.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)

# Where a row ends up. Every input row gets exactly one; "" means still in play.
ALIVE = ""
KEPT = "kept"
REJECTED = "rejected"
QUARANTINED = "quarantined"
DEDUPLICATED = "deduplicated"
# The two parts of the data: teacher traces for distillation, and prompts for RL.
SFT, RL = "sft", "rl"
# A row's identity within a build: a raw row of a source, and which of its pairs.
ROW_KEY = ("source", "source_index", "pair_index")
# The output's parts: each a folder of shards and a config of the Hub dataset, in this order.
PARTS = (SFT, RL, "rejected", "quarantine", "deduplicated")

COLUMNS: dict[str, pa.DataType] = {
    # lineage and the canonical pair
    "pair_id": pa.string(),
    "source": pa.string(),
    "source_index": pa.int64(),
    # which of the row's pairs (0 unless the source holds several pairs per row)
    "pair_index": pa.int64(),
    "subset": pa.string(),
    "domain": pa.string(),
    "license": pa.string(),
    "prompt": MESSAGES,
    "chosen": MESSAGES,
    "rejected": MESSAGES,
    "raw": pa.string(),
    # fate of the row
    "outcome": pa.string(),
    "reason": pa.string(),
    "detail": pa.string(),
    "decided_by": pa.string(),
    "dup_of": pa.string(),
    "contaminated_by": pa.list_(pa.string()),
    # pairs whose prompts are the same (exactly or nearly): the pair_id naming the group; the
    # split keeps a group on one side
    "prompt_group": pa.string(),
    # split, placement, render
    "split": pa.string(),
    "winner": pa.string(),
    "context_messages": MESSAGES,
    # teacher
    "trace": pa.string(),
    "teacher_model": pa.string(),
    "finish_reason": pa.string(),
    "prompt_tokens": pa.int64(),
    "completion_tokens": pa.int64(),
    "latency_s": pa.float64(),
    "cached": pa.bool_(),
    "teacher_error": pa.string(),
    # verdict filter
    "verdict": pa.string(),
    "pass_index": pa.int64(),
    # pass 2: what pass 1 produced for a row it retried
    "pass1": pa.struct([("teacher_model", pa.string()), ("verdict", pa.string()),
                        ("reason", pa.string()), ("prompt_tokens", pa.int64()),
                        ("completion_tokens", pa.int64())]),
    "pass1_cached": pa.bool_(),
    # order-swap check: the judgement with A and B swapped
    "swap": pa.struct([("teacher_model", pa.string()), ("verdict", pa.string()),
                       ("consistent", pa.bool_()), ("prompt_tokens", pa.int64()),
                       ("completion_tokens", pa.int64())]),
    "swap_cached": pa.bool_(),
    # the swapped judgement as a second SFT row (the judge chat with A and B swapped, and its
    # trace), when both orders were right and every check passed
    "swap_messages": MESSAGES,
    # tokens of what the trainer sees (SFT: prompt + trace; RL: prompt), and of the swapped chat
    "num_tokens": pa.int64(),
    "swap_num_tokens": pa.int64(),
}

FATE_COLUMNS = ("outcome", "reason", "detail", "decided_by", "dup_of")
# Facts about this run, not about the data: counted in the manifest, never written to shards,
# so a rerun from the cache writes the same bytes.
RUN_ONLY_COLUMNS = ("cached", "pass1_cached", "swap_cached")
CANONICAL_COLUMNS = (
    "pair_id", "source", "source_index", "pair_index", "subset", "domain", "license",
    "prompt", "chosen", "rejected", "raw", *FATE_COLUMNS,
)


def put_column(table: pa.Table, name: str, values: Any) -> pa.Table:
    """`table` with column `name` set to `values` (a list, typed as declared, or an Arrow
    column): replaced where the table has it, else appended."""
    column = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(
        values, COLUMNS[name])
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, column)
    return table.append_column(name, column)


def schema_of(names: tuple[str, ...] | list[str]) -> pa.Schema:
    return pa.schema([(n, COLUMNS[n]) for n in names])


def conform(table: pa.Table, names: tuple[str, ...] | list[str]) -> pa.Table:
    """Order and type a table's columns as declared; add declared columns it lacks as nulls."""
    arrays = []
    for name in names:
        typ = COLUMNS[name]
        if name in table.column_names:
            col = table.column(name)
            arrays.append(col if col.type == typ else col.cast(typ))
        else:
            arrays.append(pa.nulls(table.num_rows, typ))
    return pa.Table.from_arrays(arrays, schema=schema_of(names))
