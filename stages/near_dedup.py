"""Find near-duplicates across all sources with MinHash LSH, before anything is split: group
pairs whose prompts are nearly the same (they stay on one side of the split, all kept), or
remove near-duplicate rows.

1. Signatures: word n-gram shingles of the normalized text, MinHash (datasketch) in parallel
   Ray batches; each signature is cut into bands. Bands are kept on disk by a digest of the
   text (`cache_dir`), so a rebuild computes only those of texts it has not seen.
2. Candidates: each row's bands are 64-bit hashes; the driver gets them with the row's keep
   rank (never the texts: about 150 bytes a row), sorts (band, rank) pairs with numpy, and
   rows sharing a band become candidate edges from the band's first row in keep order. A Ray
   shuffle did this before; on 2 cores its aggregator processes cost more than the sort.
3. Optionally, each candidate pair is verified by the exact Jaccard similarity of its
   shingles (only candidate rows are read again; an estimate from 128 permutations would
   wrongly drop about a third of the pairs just above the threshold).
4. Union-find over the edges (only rows that have a near twin) gives clusters. With
   `mode: group`, a cluster's prompt groups become one, named by the row that sorts first
   under the keep rule; only one row per prompt group (the one naming it) is compared, as the
   others have the same prompt. With `mode: remove`, each cluster keeps that row and the
   others are marked `deduplicated`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from pipeline.engine.duplicates import mark_duplicates
from pipeline.engine.memo import digest, memo_at
from pipeline.engine.stage import Stage
from pipeline.rules.keys import compared_columns, keep_rank, row_id, row_text

KEYS = ("prompt", "pair")
MODES = ("group", "remove")
BATCH_ROWS = 1024  # rows per signature task: bounded memory, enough work per call


@dataclass(frozen=True)
class NearDedupParams:
    key: str = "prompt"
    # group: nearly identical prompts are one prompt group (every pair kept, all on one side of
    # the split); remove: every row but one of a near-duplicate cluster is removed.
    mode: str = "group"
    # Pairs at or above this Jaccard similarity of shingles are duplicates.
    threshold: float = 0.85
    num_perm: int = 128
    ngram: int = 5
    seed: int = 1
    # Check each candidate's exact Jaccard before merging (no false merges from LSH).
    verify: bool = True
    # Each text's bands are kept here (this machine's disk), by a digest of the text, so a
    # rebuild does not compute MinHash signatures again; null: always compute.
    cache_dir: str | None = "~/.cache/rubricforge/minhash"

    def check(self) -> str | None:
        if self.key not in KEYS:
            return f"key must be one of {', '.join(KEYS)}"
        if self.mode not in MODES:
            return f"mode must be one of {', '.join(MODES)}"
        if self.mode == "group" and self.key != "prompt":
            return "mode=group groups prompts: set key=prompt, or mode=remove to remove pairs"
        if not 0.0 < self.threshold <= 1.0:
            return "threshold must be in (0, 1]"
        if self.num_perm < 2 or self.ngram < 1:
            return "num_perm must be >= 2 and ngram >= 1"
        return None


def bands_rows(threshold: float, num_perm: int, recall: float = 0.95) -> tuple[int, int]:
    """Bands x rows for LSH: the most rows per band (fewest false candidates) that still finds
    a pair at the threshold with the given probability."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            return bands, rows
    return num_perm, 1


def shingles(text: str, n: int) -> set[bytes]:
    words = text.split()
    if len(words) <= n:
        return {" ".join(words).encode()}
    return {" ".join(words[i:i + n]).encode() for i in range(len(words) - n + 1)}


def jaccard(a: set[bytes], b: set[bytes]) -> float:
    return len(a & b) / len(a | b)


def _band_hash(band: int, values: np.ndarray) -> int:
    h = hashlib.blake2b(values.tobytes(), digest_size=8, person=band.to_bytes(16, "little"))
    return int.from_bytes(h.digest(), "little")


def band_memo_name(p: NearDedupParams, bands: int, rows: int) -> str:
    """The memo folder of bands computed with these settings (and this MinHash)."""
    settings = json.dumps({"ngram": p.ngram, "num_perm": p.num_perm, "seed": p.seed,
                           "bands": bands, "rows": rows,
                           "datasketch": importlib.metadata.version("datasketch"),
                           "scheme": "word-shingles/minhash-sha1/blake2b-bands/v2"}, sort_keys=True)
    return f"bands-{hashlib.sha256(settings.encode()).hexdigest()[:16]}"


def band_keys(texts: list[str], p: NearDedupParams, bands: int, rows: int) -> list[list[int]]:
    """Each text's LSH bands: 64-bit hashes of its MinHash signature cut in `bands` pieces."""
    # imported here: datasketch brings scipy, a second of start-up for every worker process,
    # and a rebuild reads every band from the memo
    from datasketch import MinHash

    hashes = MinHash.bulk([shingles(t, p.ngram) for t in texts], num_perm=p.num_perm, seed=p.seed)
    out = []
    for h in hashes:
        hv = h.hashvalues.astype(np.uint32)
        out.append([_band_hash(i, hv[i * rows:(i + 1) * rows]) for i in range(bands)])
    return out


BANDS = pa.list_(pa.uint64())
SIGNATURES = pa.schema([("id", pa.string()), ("keep", pa.string()), ("pair_id", pa.string()),
                        ("bands", BANDS)])


def _signatures(batch: pa.Table, p: NearDedupParams, bands: int, rows: int,
                priority: list[str]) -> pa.Table:
    records = batch.select([*compared_columns(p.key), "prompt_group"]).to_pylist()
    if p.mode == "group":  # one row per prompt group: the others have the same prompt
        records = [r for r in records if r["prompt_group"] in (None, r["pair_id"])]
    texts = [row_text(r, p.key) for r in records]
    if p.cache_dir:
        memo = memo_at(Path(p.cache_dir) / band_memo_name(p, bands, rows), BANDS)
        column = memo.values([digest(t) for t in texts],
                             lambda at: band_keys([texts[i] for i in at], p, bands, rows))
    else:
        column = pa.array(band_keys(texts, p, bands, rows), BANDS)
    return pa.table({"id": [row_id(r) for r in records],
                     "keep": [keep_rank(r, priority) for r in records],
                     "pair_id": [r["pair_id"] for r in records],
                     "bands": column}, schema=SIGNATURES)


def candidate_edges(bands: pa.ListArray, rank: np.ndarray) -> np.ndarray:
    """(a, b) rank pairs of rows sharing a band, from the band's first row in keep order to each
    other row, each pair once; `rank[i]` is row i's place in keep order."""
    band = pc.list_flatten(bands).to_numpy()
    member = rank[pc.list_parent_indices(bands).to_numpy()]
    order = np.lexsort((member, band))
    band, member = band[order], member[order]
    starts = np.ones(len(band), dtype=bool)
    starts[1:] = band[1:] != band[:-1]
    head = member[np.maximum.accumulate(np.where(starts, np.arange(len(band)), 0))]
    pairs = np.stack([head[~starts], member[~starts]], axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


def _pick(batch: pa.Table, wanted: set[str], key: str) -> pa.Table:
    """The candidate rows' ids, pair_ids and compared texts."""
    rows = [r for r in batch.select(list(compared_columns(key))).to_pylist()
            if row_id(r) in wanted]
    return pa.table({"id": [row_id(r) for r in rows],
                     "pair_id": [r["pair_id"] for r in rows],
                     "text": [row_text(r, key) for r in rows]},
                    schema=pa.schema([("id", pa.string()), ("pair_id", pa.string()),
                                      ("text", pa.string())]))


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # keep-ids sort in keep order: the smaller one is the cluster's keeper
            self.parent[max(ra, rb)] = min(ra, rb)


def clusters(edges: list[tuple[str, str]], sets: dict[str, set[bytes]],
             threshold: float | None) -> _UnionFind:
    """Join the candidate pairs (keep ids "rank|row id") whose exact Jaccard reaches the
    threshold; None joins every candidate (verification off)."""
    uf = _UnionFind()
    for a, b in edges:
        sa, sb = sets[a.split("|", 1)[1]], sets[b.split("|", 1)[1]]
        if threshold is None or jaccard(sa, sb) >= threshold:
            uf.union(a, b)
    return uf


class NearDedup(Stage):
    name = "near_dedup"
    inputs = ("pair_id", "source", "source_index", "pair_index", "prompt", "chosen", "rejected",
              "prompt_group")
    outputs = ("outcome", "reason", "detail", "decided_by", "dup_of", "prompt_group")
    whole_dataset = True
    Params = NearDedupParams

    def process_dataset(self, live: Any) -> Any:
        p = self.params
        bands, rows = bands_rows(p.threshold, p.num_perm)
        priority = list(self.ctx.cfg.recipe.source_priority)
        parts = [t for t in ray.get(live.map_batches(
            partial(_signatures, p=p, bands=bands, rows=rows, priority=priority),
            batch_format="pyarrow", batch_size=BATCH_ROWS,
            **self.configured_resources().ray_args()).to_arrow_refs()) if t.num_rows]
        if not parts:
            return self._mark(live, {}, {})
        sigs = pa.concat_tables(parts)
        # keep ids ("keep rank|row id") in keep order: a row's place in it is its rank
        keep_ids = [f"{k}|{i}" for k, i in zip(sigs.column("keep").to_pylist(),
                                               sigs.column("id").to_pylist(), strict=True)]
        order = np.argsort(np.array(keep_ids, dtype=object), kind="stable")
        by_rank = [keep_ids[i] for i in order]
        rank = np.empty(len(keep_ids), dtype=np.int64)
        rank[order] = np.arange(len(keep_ids))
        pairs = candidate_edges(sigs.column("bands").combine_chunks(), rank)
        if not len(pairs):
            return self._mark(live, {}, {})
        edges = [(by_rank[a], by_rank[b]) for a, b in pairs.tolist()]
        ids = {x.split("|", 1)[1] for e in edges for x in e}
        info = {}
        for t in ray.get(live.map_batches(partial(_pick, wanted=ids, key=p.key),
                                          batch_format="pyarrow").to_arrow_refs()):
            if t.num_rows == 0:  # an empty block may come back without columns
                continue
            for i, pid, text in zip(t.column("id").to_pylist(), t.column("pair_id").to_pylist(),
                                    t.column("text").to_pylist(), strict=True):
                info[i] = (pid, shingles(text, p.ngram))
        uf = clusters(edges, {i: sets for i, (_, sets) in info.items()},
                      p.threshold if p.verify else None)
        dups, regroup = {}, {}
        for member in list(uf.parent):
            root = uf.find(member)
            if root == member:
                continue
            kept_id, dup_id = root.split("|", 1)[1], member.split("|", 1)[1]
            if p.mode == "group":  # a compared row's pair_id names its prompt group
                regroup[info[dup_id][0]] = info[kept_id][0]
                continue
            # measured against the row kept, which in a chain need not be the row it matched
            similarity = jaccard(info[dup_id][1], info[kept_id][1])
            dups[dup_id] = (info[kept_id][0], "near_dup", f"near {kept_id} (jaccard {similarity:.2f})")
        return self._mark(live, dups, regroup)

    def _mark(self, live: Any, dups: dict, regroup: dict[str, str]) -> Any:
        if self.params.mode == "group":  # nothing is removed: say what was joined
            self._summary = {"prompt_groups_joined": len(regroup),
                             "groups_they_joined": len(set(regroup.values()))}
        return live.map_batches(partial(mark_duplicates, dups=ray.put(dups),
                                        regroup=ray.put(regroup), stage=self.name),
                                batch_format="pyarrow")

    def summary(self) -> dict[str, Any]:
        return getattr(self, "_summary", {})
