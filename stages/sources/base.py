"""What every source shares: loading through `datasets`, and turning raw rows into pairs.

A source module only says what its published columns are and how one row becomes a pair; the
loading, the seeded sub-sampling, the hashing and the quarantine of rows it cannot map are here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import datasets
import pyarrow as pa

from pipeline.engine.provenance import READ_METADATA, files_read
from pipeline.engine.reading import (
    InputLoadError,
    builder_for,
    read_json_rows,
    read_with_provenance,
)
from pipeline.engine.schema import ALIVE, CANONICAL_COLUMNS, QUARANTINED, REJECTED, schema_of
from pipeline.engine.stage import NoParams
from pipeline.rules.keys import pair_id

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
INDEX_COLUMN = "__source_index"
SELECTED_COLUMN = "__selected"
PROBLEM_COLUMN = "__problem"  # why a row could not be read (reason, tab, detail), else null

Messages = list[dict[str, str]]


class BadRow(Exception):
    """A row the source cannot map; it goes to quarantine with this reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Excluded(Exception):
    """A well-formed row the source does not turn into a pair (a tie, say); it is rejected
    with this reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Pair:
    prompt: Messages
    chosen: Messages
    rejected: Messages
    subset: str
    domain: str
    # A reference final answer (math), when the source publishes one: the label check
    # (stages/label_check.py) compares each answer's result with it.
    reference: str | None = None


def _required(row: dict[str, Any], key: str, kind: type, expected: str) -> Any:
    value = row.get(key)
    if value is None:
        raise BadRow("missing_field", key)
    if not isinstance(value, kind):
        raise BadRow("bad_type", f"{key} is {type(value).__name__}, expected {expected}")
    return value


def text(row: dict[str, Any], key: str) -> str:
    """A required string field; missing or mistyped values become quarantine reasons."""
    return _required(row, key, str, "str")


def conversation(row: dict[str, Any], key: str) -> Messages:
    """A required list of {role, content} messages."""
    value = _required(row, key, list, "a message list")
    out = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict) or msg.get("role") is None or msg.get("content") is None:
            raise BadRow("missing_field", f"{key}[{i}].role/content")
        out.append({"role": msg["role"], "content": msg["content"]})
    return out


def last_turns(row: dict[str, Any]) -> tuple[Messages, Messages, Messages]:
    """For datasets whose `chosen` and `rejected` are whole conversations ending with the
    answer: the shared turns before it (the prompt), and the two answers."""
    chosen = conversation(row, "chosen")
    rejected = conversation(row, "rejected")
    if not chosen or not rejected:
        raise BadRow("empty_field", "chosen" if not chosen else "rejected")
    if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        raise BadRow("last_turn_not_assistant", "the conversation does not end with the answer")
    if chosen[:-1] != rejected[:-1]:
        raise BadRow("prompt_mismatch", "chosen and rejected differ before the last turn")
    return chosen[:-1], chosen[-1:], rejected[-1:]


def merged_turns(messages: Messages) -> Messages:
    """Consecutive turns of one role joined into one (with a blank line between): for a source
    whose data splits one turn over several messages, and says so by calling this. Without it,
    `validate` quarantines such prompts as `bad_role`."""
    out: Messages = []
    for m in messages:
        if out and out[-1]["role"] == m["role"]:
            out[-1] = {"role": m["role"], "content": out[-1]["content"] + "\n\n" + m["content"]}
        else:
            out.append(dict(m))
    return out


# Speaker labels of transcript-shaped data (HH-RLHF: "\n\nHuman: ...\n\nAssistant: ...").
TRANSCRIPT_ROLES = {"Human": "user", "Assistant": "assistant"}


@dataclass(frozen=True)
class Transcript:
    """A conversation written as one text, split into turns; `inline` lists the speaker labels
    found inside a turn (a quoted speaker, or a turn the text forgot to separate)."""

    turns: Messages
    inline: list[str]

    def strict(self) -> Messages:
        """The turns, or the row quarantined as `inline_marker` when a label stands inside a
        turn: which speaker said what is then not known."""
        if self.inline:
            raise BadRow("inline_marker", "; ".join(self.inline[:3]))
        return self.turns


def transcript(text: str, roles: dict[str, str] = TRANSCRIPT_ROLES) -> Transcript:
    """Split a transcript into turns. A turn starts at a label (`Human:`) at the start of the
    text or after a blank line; the same label anywhere else is not split on but reported in
    `inline`, for the source to decide with one call (`.strict()`, or `.turns` to keep them).
    Text before the first label, or no turn at all, is a `bad_transcript`."""
    names = "|".join(map(re.escape, roles))
    boundary = re.compile(rf"(?:\A\s*|\n\n)({names}):[ \t]?")
    found = list(boundary.finditer(text))
    if not found:
        raise BadRow("bad_transcript", f"no turn: no {' or '.join(f'{n}:' for n in roles)} label")
    if text[:found[0].start()].strip():
        raise BadRow("bad_transcript", f"text before the first {found[0].group(1)}: label")
    inside = re.compile(rf"\b({names}):")
    turns, inline = [], []
    for k, m in enumerate(found):
        end = found[k + 1].start() if k + 1 < len(found) else len(text)
        content = text[m.end():end].strip()
        turns.append({"role": roles[m.group(1)], "content": content})
        inline += [f"turn {k}: {hit.group(0)!r} inside a {m.group(1)} turn"
                   for hit in inside.finditer(content)]
    return Transcript(turns, inline)


def _raw(row: dict[str, Any]) -> tuple[str, str]:
    """The raw row as JSON, and its content digest (the id of a row that gives no pair)."""
    raw = json.dumps(row, ensure_ascii=False, default=str)
    return raw, hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


def _rows(raw: pa.Table) -> list[dict[str, Any]]:
    """The raw rows as Python objects. A file may carry invalid UTF-8 inside a JSON string,
    which Arrow reads but cannot turn into text: then row by row, and such a row keeps only
    its index, selection and, as its problem, `bad_encoding`, so only that row is lost."""
    try:
        return raw.to_pylist()
    except UnicodeDecodeError:
        pass
    rows = []
    for i in range(raw.num_rows):
        one = raw.slice(i, 1)
        try:
            rows.append(one.to_pylist()[0])
        except UnicodeDecodeError as exc:
            rows.append({INDEX_COLUMN: one.column(INDEX_COLUMN)[0].as_py(),
                         SELECTED_COLUMN: one.column(SELECTED_COLUMN)[0].as_py(),
                         PROBLEM_COLUMN: f"bad_encoding\tnot UTF-8: {exc}"})
    return rows


class Source:
    """One public preference dataset. Subclasses live in their own module in this package.

    The module's name is the source's name; `conf/source/<name>.yaml` configures it and
    `data_cards/sources/<name>.md` describes it.
    """

    name: ClassVar[str]
    # The columns as published on the Hub; the shipped sample is read with exactly these.
    features: ClassVar[datasets.Features]
    # The source's own settings (`sources.<name>.params`), a dataclass like a stage's.
    Params: ClassVar[type] = NoParams

    def __init__(self, params: Any = None) -> None:
        self.params = self.Params() if params is None else params

    def to_pair(self, row: dict[str, Any]) -> Pair:
        """One raw row as one pair (most datasets); raise `BadRow` or `Excluded` otherwise."""
        raise NotImplementedError

    def to_pairs(self, row: dict[str, Any]) -> list[Pair | Excluded | BadRow]:
        """Every pair one raw row holds, for datasets with several answers per prompt.

        Override this instead of `to_pair`. An item's position in the list is its
        `pair_index`, part of the pair's identity (`source#index.pair_index`), so build it in
        an order that depends on the row alone. An item may be an `Excluded` (a tie, say) or a
        `BadRow` for a pair of the row that is not usable: it is recorded in its place, and
        the row's other pairs are kept. Raising either drops the whole row with that reason.
        Read the row, never change it: a row that is not kept is recorded as it was read.
        """
        return [self.to_pair(row)]

    # -- loading --------------------------------------------------------------------------

    def load(self, cfg: Any, use_sample: bool) -> datasets.Dataset:
        """Read through `datasets`: the Hub id, local files, or the shipped sample."""
        return self._load(cfg, use_sample)[0]

    def _load(self, cfg: Any, use_sample: bool) -> tuple[datasets.Dataset, dict[str, Any]]:
        sample = SAMPLES_DIR / cfg.sample_file if use_sample else None
        return read_with_provenance(f"sources.{cfg.name}", cfg, sample, self.features)

    def read(self, cfg: Any, use_sample: bool
             ) -> tuple[datasets.Dataset, dict[int, tuple[str, str]], dict[str, Any]]:
        """The raw rows, the rows that could not be read as (reason, detail) by index, and what
        was read (files and checksums, or the Hub commit). Local JSON files `datasets` refuses
        as a whole are read row by row, so one bad row costs that row, not its file."""
        try:
            ds, read = self._load(cfg, use_sample)
            return ds, {}, read
        except InputLoadError as exc:
            if not exc.files or builder_for(exc.files[0]) != "json":
                raise
            files = exc.files
        # outside the handler: an error reading row by row is its own, not chained to the
        # refusal above (whose message it would otherwise repeat)
        ds, problems = read_json_rows(f"sources.{cfg.name}", files, self.features)
        return ds, problems, files_read(files, cfg.data_files) | {"row_by_row": True}

    def raw_table(self, cfg: Any, use_sample: bool) -> pa.Table:
        """The raw rows plus their index, whether the recipe's seeded limit selects them, and
        what made a row unreadable."""
        ds, problems, read = self.read(cfg, use_sample)
        n = len(ds)
        selected = [True] * n
        if cfg.limit is not None:
            order = list(range(n))
            if cfg.shuffle_seed is not None:  # the same permutation as `Dataset.shuffle(seed)`
                order = ds.add_column(INDEX_COLUMN, order).shuffle(seed=cfg.shuffle_seed)[INDEX_COLUMN]
            selected = [False] * n
            for i in order[: cfg.limit]:
                selected[i] = True
        table = ds.data.table if ds._indices is None else ds.flatten_indices().data.table
        table = table.append_column(INDEX_COLUMN, pa.array(range(n), pa.int64()))
        table = table.append_column(SELECTED_COLUMN, pa.array(selected, pa.bool_()))
        table = table.append_column(PROBLEM_COLUMN, pa.array(
            ["\t".join(problems[i]) if i in problems else None for i in range(n)], pa.string()))
        return table.replace_schema_metadata({READ_METADATA: json.dumps(read)})

    # -- mapping --------------------------------------------------------------------------

    def map_batch(self, raw: pa.Table, cfg: Any) -> pa.Table:
        """Raw rows to canonical pairs; a row that cannot be mapped is quarantined, not lost."""
        excluded, license_ = set(cfg.exclude_subsets), cfg.license  # (read once: not per row)
        out = []
        for row in _rows(raw):
            index = row.pop(INDEX_COLUMN)
            selected = row.pop(SELECTED_COLUMN)
            problem = row.pop(PROBLEM_COLUMN, None)
            if problem is not None and selected:
                reason, detail = problem.split("\t", 1)
                out.append(self._unreadable(index, reason, detail, license_))
                continue
            out.extend(self._map_row(row, index, selected, excluded, license_))
        # The schema is given: rows carry different keys (a quarantined row has no prompt).
        return pa.Table.from_pylist(out, schema=schema_of(CANONICAL_COLUMNS))

    def _unreadable(self, index: int, reason: str, detail: str, license_: str) -> dict[str, Any]:
        """A row that could not be read: quarantined with why and where, its content unknown."""
        raw_id = hashlib.sha256(f"{self.name}:{index}:{reason}".encode()).hexdigest()[:24]
        return {"source": self.name, "source_index": index, "pair_index": 0,
                "license": license_, "pair_id": raw_id, "outcome": QUARANTINED,
                "reason": reason, "detail": detail, "decided_by": f"source:{self.name}"}

    def _map_row(
        self, row: dict[str, Any], index: int, selected: bool, excluded: set[str], license_: str
    ) -> list[dict[str, Any]]:
        """The canonical rows of one raw row: one per pair it holds (at least one)."""
        base = {"source": self.name, "source_index": index, "pair_index": 0,
                "license": license_, "outcome": ALIVE, "reason": "", "detail": "",
                "decided_by": ""}
        stage = f"source:{self.name}"
        if not selected:  # outside the recipe's sample: counted, never looked at
            return [base | {"pair_id": _raw(row)[1], "outcome": REJECTED,
                            "reason": "over_limit", "detail": "not in the recipe's seeded sample",
                            "decided_by": stage}]
        try:
            items = self.to_pairs(row)
        except (BadRow, Excluded) as exc:
            items = [exc]
        if not items:
            items = [Excluded("no_pairs", "the row holds no pair to compare")]
        out = []
        for k, item in enumerate(items):
            one = base | {"pair_index": k}
            if isinstance(item, BadRow | Excluded):
                raw, raw_id = _raw(row)  # only for the rows that are not kept: most are
                outcome = QUARANTINED if isinstance(item, BadRow) else REJECTED
                item_id = raw_id if k == 0 else hashlib.sha256(
                    f"{raw_id}:{k}".encode()).hexdigest()[:24]
                out.append(one | {"pair_id": item_id, "raw": raw, "outcome": outcome,
                                  "reason": item.reason, "detail": item.detail,
                                  "decided_by": stage})
                continue
            fields = {"pair_id": pair_id(item.prompt, item.chosen, item.rejected),
                      "prompt": item.prompt, "chosen": item.chosen, "rejected": item.rejected,
                      "subset": item.subset, "domain": item.domain,
                      "reference": item.reference}
            if item.subset in excluded:
                fields |= {"outcome": REJECTED, "reason": "excluded_subset",
                           "detail": item.subset, "decided_by": stage}
            out.append(one | fields)
        return out
