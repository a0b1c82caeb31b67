"""The dataset card: README.md at the root of the output, so the directory is a Hub repository.

The YAML header comes from `huggingface_hub`'s card data; the body from `data_cards/template.md`
and one card per source. Every number in it is read from the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData
from omegaconf import OmegaConf

from pipeline.engine.config import shipped
from pipeline.engine.schema import PARTS
from pipeline.output.manifest import Tally
from pipeline.output.plots import draw_plots
from pipeline.rules.cues import CUE_NAMES
from pipeline.rules.templates import fill
from pipeline.rules.trace_checks import check_rules

CARDS_DIR = shipped("data_cards")
NON_COMMERCIAL = ("-nc", "noncommercial", "non-commercial")
# How each training part is used, for the card; only the parts a build has are named. The full
# commands, tested against pinned releases, are in rubricforge's README.
TRAINING = {
    "sft": [
        "- **TRL** (`SFTTrainer`): `messages` is the judge prompt plus the trace (loss on the "
        "whole chat); `context_messages` and `judge_response` renamed to `prompt` and "
        "`completion` give the loss on the trace only.",
        "- **OpenRLHF** (SFT, 0.10.2 or later): `--data.dataset <local copy>/sft "
        "--data.input_key context_messages --data.output_key judge_response "
        "--data.apply_chat_template` (both columns are message lists).",
    ],
    "rl": [
        "- **verl** (RL): the `rl` parquet files have `data_source`, `prompt`, `ability`, "
        "`reward_model` (`style: rule`, `ground_truth`) and `extra_info`; the reward is "
        "`compute_score` in rubricforge's `pipeline/rules/verdict.py` "
        "(`reward.custom_reward_function.path=<rubricforge>/pipeline/rules/verdict.py`, "
        "`reward.custom_reward_function.name=compute_score`).",
        "- **TRL** (`GRPOTrainer`): the conversational `prompt`, with "
        "`reward_funcs=trl_reward` from the same file (it reads the `winner` column).",
    ],
}


def size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
              (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]
    return next((label for bound, label in bounds if n < bound), "n>10M")


def license_of(sources: dict[str, str]) -> tuple[str, list[str]]:
    """The card's license and the warnings a user must read before using the data."""
    licenses = sorted(set(sources.values()))
    warnings = []
    if len(licenses) > 1:
        listed = ", ".join(f"{s}: {lic}" for s, lic in sorted(sources.items()))
        warnings.append(f"The sources are under different licenses ({listed}); the combination "
                        "is marked `other`, and each row carries its source's `license`.")
    for source, lic in sorted(sources.items()):
        if any(mark in lic.lower() for mark in NON_COMMERCIAL):
            warnings.append(f"`{source}` is under a non-commercial license ({lic}): so is every "
                            "dataset built from it.")
        elif lic == "other":
            warnings.append(f"`{source}` is under its own terms (`other`): read its card below "
                            "before you redistribute or train a commercial model.")
    return (licenses[0] if len(licenses) == 1 else "other"), warnings


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def funnel_rows(m: dict[str, Any]) -> list[dict[str, int]]:
    """Per source: rows in, then where they went, every column in pairs (a row adds up to its
    input, or its pairs). A pair the teacher judged twice (pass 2) counts once: calls are
    the teacher table's."""
    judged: dict[str, int] = {}
    for q in m["quality"]["verdict_accuracy"]:
        if q["pass"] == 1:  # every judged pair had a pass 1
            judged[q["source"]] = judged.get(q["source"], 0) + q["judged"]
    out = []
    for source, acc in m["accounting"].items():
        by_reason = {}
        for r in m["reasons"]:
            if r["source"] == source and r["outcome"] == "rejected":
                key = ("excluded" if r["stage"].startswith("source:") else
                       "contaminated" if r["reason"] == "contaminated" else "filtered")
                by_reason[key] = by_reason.get(key, 0) + r["rows"]
        n_in = acc.get("input_rows", acc.get("added_rows"))
        out.append({"source": source, "input": n_in, "pairs": acc.get("pairs", n_in),
                    "added_by": acc.get("added_by"),
                    "quarantined": acc.get("quarantined", 0),
                    "deduplicated": acc.get("deduplicated", 0),
                    "excluded": by_reason.get("excluded", 0),
                    "contaminated": by_reason.get("contaminated", 0),
                    "rl": acc.get("kept_rl", 0), "judged": judged.get(source, 0),
                    "rejected_by_filter": by_reason.get("filtered", 0),
                    "sft": acc.get("kept_sft", 0)})
    return out


def _identical_text(t: dict[str, int]) -> str:
    """One line on SFT traces that are the same text for different pairs (a teacher repeating
    itself teaches a template, not a judgement)."""
    if not t["rows_with_a_shared_text"]:
        return f"All {t['sft_traces']} SFT traces are distinct texts."
    return (f"{t['distinct']} distinct texts among {t['sft_traces']} SFT traces: "
            f"{t['rows_with_a_shared_text']} rows share {t['texts_kept_more_than_once']} texts "
            f"with another pair.")


def _sft_count(m: dict[str, Any]) -> str:
    """SFT rows, and the pairs they come from when some pairs are kept in both orders."""
    pairs, rows = m["totals"]["kept_sft"], m["sft_rows"]
    if rows == pairs:
        return str(rows)
    return (f"{rows} ({pairs} pairs, {rows - pairs} of them kept in both orders: one trace "
            "says A, the other B)")


def _input_cell(f: dict[str, Any]) -> str:
    """Rows read, and the pairs they hold where a source gives several per row (the other
    columns count pairs), or the pairs a stage added."""
    if f["added_by"]:
        return f"{f['input']} added by {f['added_by']}"
    return str(f["input"]) if f["pairs"] == f["input"] else f"{f['input']} ({f['pairs']} pairs)"


def cue_table(cues: list[dict[str, Any]]) -> str:
    """Each cue's share among the pairs that differ in it, with its 95% interval."""
    if not cues:
        return "No pair kept."
    return _table(["part", "source", "cue", "pairs that differ", "share", "95% interval"],
                  [[c["part"], c["source"],
                    CUE_NAMES[c["cue"]] + (f" ({c['unit']})" if c.get("unit") else ""),
                    f"{c['differ']} of {c['pairs']}",
                    "-" if c["share"] is None else f"{c['share']:.1%}",
                    "-" if c["interval"] is None else
                    f"{c['interval'][0]:.1%} - {c['interval'][1]:.1%}"] for c in cues])


def calls_line(calls: list[dict[str, Any]]) -> str:
    """The teacher's calls, apart from the funnel's pairs: a pair may be asked more than once."""
    per = {}
    for c in calls:
        per[c["call"]] = per.get(c["call"], 0) + c["calls"]
    if not per:
        return "No teacher calls."
    said = ", ".join(f"{call} {n}" for call, n in sorted(per.items()))
    return (f"Every column counts pairs. Teacher calls, apart: {said} (pass 2 asks again for "
            "what pass 1 got wrong; see Teacher).")


def read_table(read: dict[str, Any]) -> str:
    """Where each source's rows came from, one line a file (a Hub read: one line, its commit)."""
    rows = []
    for source, r in sorted(read.items()):
        if r["kind"] == "hub":
            where = " / ".join(str(x) for x in (r["config"], r["data_dir"], r["split"]) if x)
            files = r.get("files") or []
            local = [f for f in files if isinstance(f, dict)]
            if local:
                rows += [[source, f"`{r['hub_id']}` ({where})", f"`{f['path']}`", f["bytes"],
                          f"`{f['sha256'][:16]}`"] for f in local]
            else:
                rows.append([source, f"Hub `{r['hub_id']}` ({where})",
                             f"{len(files)} files at commit `{r['commit'] or r['revision']}`",
                             "", ""])
        else:
            label = "shipped sample" if r.get("sample") else "local files"
            rows += [[source, label, f"`{f['path']}`", f["bytes"], f"`{f['sha256'][:16]}`"]
                     for f in r.get("files", [])]
    return _table(["source", "from", "file", "bytes", "sha256 (first 16)"], rows) if rows else \
        "Not recorded."


def contamination_text(m: dict[str, Any]) -> str:
    """Which benchmarks the prompts were checked against, and what each removed."""
    summary = next((s["summary"] for s in m["stages"]
                    if s["stage"] == "decontaminate" and "summary" in s), None)
    if summary is None:
        return ("The recipe has no `decontaminate` stage: the prompts were **not** checked "
                "against reward benchmarks.")
    n = summary["ngram"]
    checked = ", ".join(f"`{name}` ({b['prompts']} prompts)"
                        for name, b in summary["benchmarks"].items())
    text = (f"Every prompt was checked against {checked}. A pair is removed when its prompt "
            f"shares a {n}-word sequence with a benchmark prompt (compared case- and "
            f"spacing-insensitively), or has exactly the words of one shorter than {n} words.")
    rows = [[c["source"], c["benchmark"], c["rows"]] for c in m["contamination"]]
    if not rows:
        return text + "\n\nNo overlap was found."
    return text + "\n\n" + _table(["source", "benchmark", "rows removed"], rows)


def usage_lines(parts: set[str]) -> tuple[str, str]:
    """The card's `load_dataset` lines and trainer notes, for the training parts the build has."""
    training = [p for p in TRAINING if p in parts]
    if not training:
        return "# this build kept no rows for training", "This build kept no rows for training."
    load = "\n".join(f'{p} = load_dataset("<this repo or directory>", "{p}", split="train")'
                     for p in training)
    notes = [line for p in training for line in TRAINING[p]]
    notes.append("- **RM-R1's scripts**: `context_messages` and `winner` (`model_a` / "
                 "`model_b`) as in its released sets.")
    return load, "\n".join(notes)


def write_card(out: Path, m: dict[str, Any], tally: Tally, cfg: Any) -> Path:
    sources = {name: s.license for name, s in cfg.sources.items()}
    license_, warnings = license_of(sources)
    parts = {f["part"] for f in m["files"].values()}
    configs = [{"config_name": p, "data_files": [{"split": "train", "path": f"{p}/train-*"}]}
               for p in PARTS if p in parts]  # the parts that have files, in order
    total = m["sft_rows"] + m["totals"]["kept_rl"]
    data = DatasetCardData(
        license=license_, language=["en"], task_categories=["text-generation"],
        size_categories=[size_category(total)], pretty_name=f"rubricforge {m['recipe']}",
        tags=["reward-modeling", "llm-as-a-judge", "chain-of-rubrics", "rubricforge"],
        configs=configs)
    plots = draw_plots(out / "assets", m, tally)
    funnel = funnel_rows(m)
    q = m["quality"]
    load_lines, trainer_lines = usage_lines(parts)
    body = fill((CARDS_DIR / "template.md").read_text(encoding="utf-8"), {
        "pretty_name": data.pretty_name,
        "recipe": m["recipe"],
        "kept_sft": _sft_count(m),
        "kept_rl": str(m["totals"]["kept_rl"]),
        "inputs": f"{sum(m['inputs'].values())} preference pairs" + (
            f", and {sum(m['added'].values())} pairs the build added ("
            + ", ".join(sorted({a["added_by"] for a in m["accounting"].values()
                                if a.get("added_by")})) + ")" if m.get("added") else ""),
        "license_warnings": "\n".join(f"> **License:** {w}" for w in warnings) or
                            f"License: `{license_}`.",
        "load_lines": load_lines,
        "trainer_lines": trainer_lines,
        "configs": ", ".join(f"`{c['config_name']}`" for c in configs) or "none",
        "command": m["command"],
        "config_sha256": m["config_sha256"],
        "config_yaml": OmegaConf.to_yaml(cfg).strip(),
        "funnel_table": _table(
            ["source", "input", "quarantined", "deduplicated", "excluded by recipe",
             "contaminated", "RL prompts", "pairs judged by teacher", "rejected by filter",
             "SFT pairs"],
            [[f["source"], _input_cell(f)]
             + [f[k] for k in ("quarantined", "deduplicated", "excluded", "contaminated", "rl",
                               "judged", "rejected_by_filter", "sft")]
             for f in funnel]),
        "read_table": read_table(m.get("read") or {}),
        "funnel_calls": calls_line(m["teacher"]["by_call"]),
        "contamination": contamination_text(m),
        "reasons_table": _table(["source", "outcome", "reason", "stage", "rows"],
                                [[r["source"], r["outcome"], r["reason"], r["stage"], r["rows"]]
                                 for r in m["reasons"]]),
        "filter_table": _filter_table(q["filter_rejections"], m["teacher"]["by_call"],
                                      check_rules(cfg.prompt.min_quote_fidelity)),
        "min_quote_fidelity": str(cfg.prompt.min_quote_fidelity),
        "quote_table": quote_table(q.get("quote_fidelity") or []),
        "label_table": label_table(q.get("labels") or [], cfg),
        "accuracy_table": _accuracy_table(q["verdict_accuracy"], "source"),
        "domain_accuracy_table": _accuracy_table(q["verdict_accuracy_by_domain"], "domain"),
        "swap_table": _table(["source", "teacher", "judged in both orders", "consistent",
                              "agreement"],
                             [[a["source"], a["teacher"], a["judged"], a["consistent"],
                               a["agreement"]] for a in q["swap_agreement"]])
        if q["swap_agreement"] else "Not checked (the recipe has no `swap_consistency` stage).",
        "identical_traces": _identical_text(q["identical_traces"]),
        "cue_table": cue_table(q.get("cues") or []),
        "position_table": _table(["part", "source", "winner A", "winner B", "share A"],
                                 [[p["part"], p["source"], p["winner_a"], p["winner_b"],
                                   p["share_a"]] for p in q["position_balance"]]),
        "token_table": _table(["part", "rows", "mean", "p50", "p90", "max"],
                              [[part, t["rows"], t["mean"], t["p50"], t["p90"], t["max"]]
                               for part, t in q["num_tokens"].items()])
        if q["num_tokens"] else "Not counted (the recipe has no `token_lengths` stage).",
        "teacher_table": _table(["call", "model", "calls", "requests", "from cache", "errors",
                                 "prompt tokens", "of them from the provider's prompt cache",
                                 "completion tokens"],
                                [[c["call"], c["model"], c["calls"], c["requests"], c["cached"],
                                  c["errors"], c["prompt_tokens"], _share(
                                      c.get("cache_read_tokens", 0), c["prompt_tokens"]),
                                  c["completion_tokens"]]
                                 for c in m["teacher"]["by_call"]]),
        "plots": "\n\n".join(f"![{title}](assets/{path.name})" for title, path in plots),
        "source_cards": "\n\n".join(_source_card(name) for name in sorted(sources)),
    })
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
    path = out / "README.md"
    card.save(path)
    return path


def _share(part: int, whole: int) -> str:
    return f"{part} ({part / whole:.0%})" if part and whole else "0"


def _filter_table(rejections: list[dict[str, Any]], calls: list[dict[str, Any]],
                  rules: dict[str, str]) -> str:
    """Teacher answers each check turned away, per pass, beside the answers each pass got
    (every one was paid for), and what the check turns away."""
    if not rejections:
        return "The filter turned no teacher answer away."
    passes = sorted({k for r in rejections for k in r if k != "reason"})
    answered = {p: sum(c["calls"] - c["not_sent"] for c in calls if c["call"] == p) for p in passes}
    rows = [[r["reason"], *(r.get(p, 0) for p in passes), rules.get(r["reason"], "")]
            for r in rejections]
    rows.append(["**teacher answers**", *(answered[p] for p in passes), ""])
    return _table(["reason", *passes, "turns away"], rows)


def label_table(labels: list[dict[str, Any]], cfg: Any) -> str:
    """Per source and kind of evidence (a reference answer, the teachers' unhinted judgements),
    the labels checked and the contested share."""
    stages = cfg.recipe.stages or {}
    if stages.get("label_check") is None:
        return "Not checked (the recipe has no `label_check` stage)."
    checked = [x for x in labels if x["evidence"]]
    if not checked:
        return "No source published a reference answer: no label could be checked."
    policy = stages.label_check
    table = _table(["source", "evidence", "checked", "verified", "contested", "share",
                    "95% interval", "undecided"],
                   [[x["source"], x["evidence"], x["checked"], x["verified"], x["contested"],
                     "-" if x["share"] is None else f"{x['share']:.1%}",
                     "-" if x["interval"] is None else
                     f"{x['interval'][0]:.1%} - {x['interval'][1]:.1%}", x["unverified"]]
                    for x in checked])
    said = {"drop": "dropped (in `rejected/` as `contested_label`, with the evidence in "
                    "`detail`)", "mark": "kept, with `label_status: contested`"}
    text = (f"{table}\n\nContested by a reference answer: in `sft` "
            f"{said[policy.get('sft', 'drop')]}; in `rl` {said[policy.get('rl', 'drop')]}.")
    audit = stages.get("label_audit")
    if audit is not None:
        second = (f"the audit teacher `{cfg.audit.model}` on the same prompt" if cfg.get("audit")
                  else "the pass-1 teacher with Chatbot A and B swapped")
        text += (f" Teachers' evidence: each pair pass 1 judged wrong was judged again by "
                 f"{second}; a pair both judgements contest is, in `sft`, "
                 f"{said[audit.get('sft', 'drop')]}. `verified` by the teachers means pass 1 "
                 f"agreed with the label; `undecided`, that the two judgements split.")
    return text


def quote_table(spread: list[dict[str, Any]]) -> str:
    """Per source, the spread of the traces' lowest quote fidelity."""
    if not spread:
        return "No trace quoted the answers (a teacher held to the grammar cites with summaries)."
    return _table(["source", "traces with quotes", "lowest", "10th percentile", "median",
                   "every word found"],
                  [[s["source"], s["traces"], f"{s['min']:.2f}", f"{s['p10']:.2f}",
                    f"{s['p50']:.2f}", f"{s['exact']} ({s['exact'] / s['traces']:.0%})"]
                   for s in spread])


def _accuracy_table(rows: list[dict[str, Any]], by: str) -> str:
    return _table([by, "pass", "teacher", "judged", "verdict right", "kept", "accuracy"],
                  [[q[by], q["pass"], q["teacher"], q["judged"], q["verdict_correct"], q["kept"],
                    q["accuracy"]] for q in rows])


def _source_card(name: str) -> str:
    text = (CARDS_DIR / "sources" / f"{name}.md").read_text(encoding="utf-8").strip()
    return text.replace("\n# ", "\n### ").replace("\n## ", "\n#### ").replace("# ", "### ", 1)
