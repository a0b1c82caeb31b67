"""The columns rows carry through the build, with one Arrow type each.

The engine's own columns are here; a stage that adds columns of its own declares them on its
class (`Stage.columns`), which adds them to this table wherever the stage's module is imported.
Stages name the columns they read and write; the plan checks those names against this table
before a build starts, turns them into one Arrow schema per step, and the engine passes that
schema along, so a worker types a batch without importing the stage that added a column.
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
    # a reference final answer the source publishes (Math-Step-DPO's `answer`), or null: what
    # the label check compares each answer's result with
    "reference": pa.string(),
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
    # of prompt_tokens, those the provider read from its prompt cache (billed at its cache rate)
    "cache_read_tokens": pa.int64(),
    "latency_s": pa.float64(),
    "cached": pa.bool_(),
    "teacher_error": pa.string(),
    # verdict filter
    "verdict": pa.string(),
    "pass_index": pa.int64(),
}

FATE_COLUMNS = ("outcome", "reason", "detail", "decided_by", "dup_of")
# Facts about this run, not about the data: counted in the manifest, never written to shards,
# so a rerun from the cache writes the same bytes.
RUN_ONLY_COLUMNS = ("cached",)
CANONICAL_COLUMNS = (
    "pair_id", "source", "source_index", "pair_index", "subset", "domain", "license",
    "prompt", "chosen", "rejected", "reference", "raw", *FATE_COLUMNS,
)


def put_column(table: pa.Table, name: str, values: Any) -> pa.Table:
    """`table` with column `name` set to `values` (a list, typed as declared, or an Arrow
    column): replaced where the table has it, else appended."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        column = values
    else:
        typ = COLUMNS.get(name) or (table.schema.field(name).type if name in table.column_names
                                    else None)
        if typ is None:
            raise KeyError(f"column '{name}' is declared nowhere (pipeline/engine/schema.py or a "
                           "stage's `columns`)")
        column = pa.array(values, typ)
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, column)
    return table.append_column(name, column)


# What the engine passes along as a step's columns: their schema (or, where every name is the
# engine's own, just the names).
Columns = pa.Schema | tuple[str, ...] | list[str]


def declare(columns: dict[str, pa.DataType], owner: str) -> None:
    """Add a stage's own columns to the table (a name declared twice must keep its type)."""
    for name, typ in columns.items():
        known = COLUMNS.get(name)
        if known is not None and known != typ:
            raise TypeError(f"{owner} declares column '{name}' as {typ}; it is already {known}")
        COLUMNS[name] = typ


def schema_of(columns: Columns) -> pa.Schema:
    if isinstance(columns, pa.Schema):
        return columns
    return pa.schema([(n, COLUMNS[n]) for n in columns])


def names_of(columns: Columns) -> list[str]:
    return columns.names if isinstance(columns, pa.Schema) else list(columns)


def conform(table: pa.Table, columns: Columns) -> pa.Table:
    """Order and type a table's columns as declared; add declared columns it lacks as nulls."""
    schema = schema_of(columns)
    arrays = []
    for name, typ in zip(schema.names, schema.types, strict=True):
        if name in table.column_names:
            col = table.column(name)
            arrays.append(col if col.type == typ else col.cast(typ))
        else:
            arrays.append(pa.nulls(table.num_rows, typ))
    return pa.Table.from_arrays(arrays, schema=schema)
