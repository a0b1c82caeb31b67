"""Keys stages share: seeded orderings, normalized text, and which of two duplicates is kept.

They live in the engine so that stages agree on them without importing each other.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable
from typing import Any


def rank_key(seed: int, salt: str, pair_id: str, index: int) -> str:
    """A seeded pseudo-random order that does not depend on how rows were batched."""
    return hashlib.sha256(f"{seed}:{salt}:{pair_id}:{index}".encode()).hexdigest()


def seeded_order(seed: int, salt: str, ids: list[str], idx: list[int],
                 among: Iterable[int] | None = None) -> list[int]:
    """Positions `among` (default: all) of rows with these pair ids and source indices, in
    the seeded `rank_key` order."""
    rows = range(len(ids)) if among is None else among
    return sorted(rows, key=lambda i: rank_key(seed, salt, ids[i], idx[i]))


def pair_id(prompt: Any, chosen: Any, rejected: Any) -> str:
    """Stable content hash of a pair (its messages): the same pair gets the same id in any
    source, run or machine."""
    blob = json.dumps([prompt, chosen, rejected], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def normalize(text: str) -> str:
    """Compare texts as people read them: Unicode-folded, lower-case, spacing collapsed.
    (NFKC leaves ASCII as it is; `split()` splits on exactly what `\\s` matches.)"""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.casefold().split())


def row_text(row: dict[str, Any], key: str) -> str:
    """The normalized text a duplicate check compares: the prompt's turns, or the whole pair.
    Role labels are left out: they are not content, and on a short prompt they would weigh."""
    parts = [m["content"] for m in row["prompt"]]
    if key == "pair":
        parts += [row["chosen"][0]["content"], row["rejected"][0]["content"]]
    return normalize("\n".join(parts))


def prompt_and_pair_text(row: dict[str, Any]) -> tuple[str, str]:
    """`row_text(row, "prompt")` and `row_text(row, "pair")` for the cost of one: normalizing
    texts joined by a line break gives their normalized words joined, so the prompt is
    normalized once."""
    prompt = row_text(row, "prompt")
    answers = normalize(row["chosen"][0]["content"] + "\n" + row["rejected"][0]["content"])
    return prompt, " ".join(t for t in (prompt, answers) if t)


def compared_columns(key: str) -> tuple[str, ...]:
    """What `row_text`, `row_id` and `keep_rank` read of a row: the rest need not be converted."""
    texts = ("prompt", "chosen", "rejected") if key == "pair" else ("prompt",)
    return ("pair_id", "source", "source_index", "pair_index", *texts)


def row_name(source: str, index: int, pair_index: int | None) -> str:
    """A row's name in details and joins, unique within a build: `source#index`, and
    `source#index.k` for the k-th pair (k > 0) of a raw row that holds several."""
    return f"{source}#{index}" + (f".{pair_index}" if pair_index else "")


def row_id(row: dict[str, Any]) -> str:
    return row_name(row["source"], row["source_index"], row.get("pair_index"))


def keep_rank(row: dict[str, Any], priority: list[str]) -> str:
    """Sorts first for the row a duplicate group keeps: listed sources in the order given, then
    the others by name, then the smallest pair_id, then the source's own row order."""
    order = priority.index(row["source"]) if row["source"] in priority else len(priority)
    return (f"{order:04d}:{row['source']}:{row['pair_id']}:{row['source_index']:012d}"
            f":{row.get('pair_index') or 0:06d}")
