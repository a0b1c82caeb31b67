"""What a build would ask its teachers and what it would cost, before anything is spent.

`rubricforge build --estimate` runs the stages before the first teacher on Ray exactly as the
build does, so the distillation set is the real one; renders every pass-1 request and looks it
up in the cache; counts prompt tokens (with `teacher.tokenizer`, else about 4 characters a
token: providers' tokenizers are not all public) and at most `max_tokens` per answer. Later
teacher stages depend on pass 1's answers, so they are projected: RM-R1 reports about 75% of
zero-shot verdicts right, so pass 2 asks again for about 25% of pass 1, and the swap check
judges about every pair kept. Nothing is written and no teacher is started.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.build import log_file, read_sources
from pipeline.engine.batches import in_play
from pipeline.engine.config import ConfigError
from pipeline.engine.ray_session import ray_session
from pipeline.engine.runner import apply_stage
from pipeline.engine.schema import ALIVE, SFT
from pipeline.engine.terminal import others_to_log
from pipeline.plan import Plan
from pipeline.teachers.prices import TABLE, price_usd, rates
from pipeline.teachers.requests import prompt_tokens, tokenizer_name, uncached
from pipeline.teachers.stage import ZERO_SHOT_ACCURACY, TeacherStage
from pipeline.teachers.teacher_config import kind_of


@dataclass
class Line:
    stage: str
    model: str
    calls: int
    cached: int
    prompt_tokens: int
    completion_tokens: int  # at most: max_tokens per answer
    cost_usd: float | None
    projected: bool
    # what the same calls cost at the list price (no batch discount, nothing read from a
    # prompt cache), and how much of the difference the prompt cache takes off
    list_usd: float | None = None
    cache_off_usd: float = 0.0
    # the setting that names the teacher (`teacher`, `teacher2`)
    teacher_key: str = "teacher"

    @property
    def asked(self) -> int:
        return self.calls - self.cached


def _count(stage: TeacherStage, teacher: Any, batch: pa.Table) -> pa.Table:
    rows = batch.filter(in_play(stage, batch)).to_pylist()
    requests = [stage.request(r) for r in rows if stage.wants(r)]
    new = uncached(teacher, requests)
    tokens = sum(prompt_tokens(teacher, r["messages"]) for r in new.values())
    alive = batch.filter(pc.equal(batch.column("outcome"), ALIVE))
    n_sft = sum(s == SFT for s in alive.column("split").to_pylist()) if alive.num_rows else 0
    return pa.table({"calls": [len(requests)], "cached": [len(requests) - len(new)],
                     "tokens": [tokens], "sft": [n_sft], "alive": [alive.num_rows]})


def _cost(teacher: Any, prompt: int, completion: int, asked: int = 0, prefix: int = 0
          ) -> tuple[float | None, float | None, float]:
    """The cost of `asked` requests with these tokens, their list price, and what the prompt
    cache takes off: each request after the first reads the shared prefix (`prefix` tokens, the
    judge's instructions) from the provider's cache, when the prefix reaches the shortest the
    provider caches for the model. (None: prices unknown.)"""
    r = rates(teacher)
    if not r.known:
        return None, None, 0.0
    full = price_usd(teacher, prompt, completion)
    cached = prefix if cache_applies(teacher, prefix) else 0
    reads = cached * max(asked - 1, 0)
    cost = price_usd(teacher, prompt, completion, cache_read=reads, cache_write=cached)
    return cost, full / kind_of(teacher).price_factor, full - cost


def cache_applies(teacher: Any, prefix: int) -> bool:
    """Whether the provider caches a shared prefix of `prefix` tokens for this teacher: it is
    at least the model's minimum (conf/prices.yaml), and the backend marks it where the
    provider needs a mark (Anthropic) or the provider caches by itself (OpenAI)."""
    minimum = rates(teacher).min_cached_prefix
    marked = getattr(teacher, "cache_prompt", True)
    return bool(minimum) and prefix >= minimum and marked


def shared_prefix(teacher: Any, system: str) -> int:
    """Tokens of the prefix every request shares: the judge's instructions."""
    return prompt_tokens(teacher, [{"role": "system", "content": system}])


def line_of(who: str, teacher: Any, calls: int, pending: dict[str, dict[str, Any]],
            system: str = "") -> Line:
    """The line of `calls` requests of which `pending` (by key) the cache cannot answer."""
    prompt = sum(prompt_tokens(teacher, r["messages"]) for r in pending.values())
    output = len(pending) * teacher.max_tokens
    cost, listed, off = _cost(teacher, prompt, output, len(pending),
                              shared_prefix(teacher, system) if system else 0)
    return Line(who, teacher.model, calls, calls - len(pending), prompt, output, cost, False,
                listed, off)


def estimate(cfg: Any, plan: Plan, accuracy: float = ZERO_SHOT_ACCURACY
             ) -> tuple[list[Line], dict[str, int]]:
    """The teacher lines of the plan, and the rows in play when the first teacher is reached;
    the stages after pass 1 are projected with `accuracy`, the share of its verdicts right."""
    teachers = [s for s in plan.stages if isinstance(s, TeacherStage)]
    if not teachers:
        return [], {}
    first = teachers[0]
    with others_to_log(log_file(cfg, "estimate.log")), ray_session(cfg.ray):
        ds, _, _ = read_sources(plan, cfg.recipe.use_samples, cfg.ray.block_rows)
        for stage, columns in zip(plan.stages, plan.columns_after, strict=True):
            if stage is first:
                break
            ds = apply_stage(ds, stage, columns)
        totals = ds.map_batches(partial(_count, first, first.teacher_config()),
                                batch_format="pyarrow").sum(["calls", "cached", "tokens", "sft", "alive"])
    t = first.teacher_config()
    calls, cached = int(totals["sum(calls)"] or 0), int(totals["sum(cached)"] or 0)
    prompt = int(totals["sum(tokens)"] or 0)
    system = cfg.prompt.system
    asked = calls - cached
    cost, listed, off = _cost(t, prompt, asked * t.max_tokens, asked, shared_prefix(t, system))
    lines = [Line(first.name, t.model, calls, cached, prompt, asked * t.max_tokens, cost, False,
                  listed, off, first.teacher_key)]
    per_call = prompt / max(calls - cached, 1)
    for stage in teachers[1:]:
        t2 = stage.teacher_config()
        n = round(calls * stage.projected_share(accuracy))
        n_cached = round(n * cached / calls) if calls else 0
        ptok = round((n - n_cached) * (per_call + (t.max_tokens if stage.prompt_adds_trace
                                                   else 0)))
        ctok = (n - n_cached) * t2.max_tokens
        cost, listed, off = _cost(t2, ptok, ctok, n - n_cached, shared_prefix(t2, system))
        lines.append(Line(stage.name, t2.model, n, n_cached, ptok, ctok, cost, True, listed,
                          off, stage.teacher_key))
    rows = {"distill": int(totals["sum(sft)"] or 0),
            "rl": int(totals["sum(alive)"] or 0) - int(totals["sum(sft)"] or 0)}
    return lines, rows


def accuracy_from(path: str, teacher: Any) -> tuple[float, str]:
    """The teacher's single-order verdict accuracy measured by `rubricforge eval` (its
    eval.json), and where it comes from; one line when the file cannot be used."""
    import json

    try:
        report = json.loads(Path(path).read_text())
        measured = report["verdict_accuracy"]
        model = report["teacher"]["model"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--accuracy-from {path}: not an eval.json of "
                          f"`rubricforge eval` ({type(exc).__name__}: {exc})") from None
    if measured is None:
        raise ConfigError(f"--accuracy-from {path}: the eval judged nothing")
    where = f"measured by rubricforge eval for {model} ({path})"
    if model != teacher.model:
        where += f"; note: the build's teacher is {teacher.model}"
    return float(measured), where


def table(lines: list[Line]) -> list[str]:
    """The calls, tokens and cost of each line and their total: the table `build --estimate` and
    `eval --estimate` print."""
    out = [f"  {'stage':18s} {'teacher':28s} {'calls':>8s} {'cached':>8s} {'to ask':>8s} "
               f"{'prompt tok':>12s} {'output tok':>12s} {'cost USD':>10s}"]
    for ln in lines:
        cost = f"{ln.cost_usd:,.2f}" if ln.cost_usd is not None else "?"
        mark = "*" if ln.projected else " "
        out.append(f"  {ln.stage + mark:18s} {ln.model[:28]:28s} {ln.calls:>8,} {ln.cached:>8,} "
                   f"{ln.asked:>8,} {ln.prompt_tokens:>12,} {ln.completion_tokens:>12,} {cost:>10s}")
    known = [ln.cost_usd for ln in lines if ln.cost_usd is not None]
    total = f"{sum(known):,.2f}" if len(known) == len(lines) else "?"
    out.append(f"  {'total':18s} {'':28s} {sum(ln.calls for ln in lines):>8,} "
               f"{sum(ln.cached for ln in lines):>8,} {sum(ln.asked for ln in lines):>8,} "
               f"{sum(ln.prompt_tokens for ln in lines):>12,} "
               f"{sum(ln.completion_tokens for ln in lines):>12,} {total:>10s}")
    return out


def notes(teacher: Any, lines: list[Line]) -> list[str]:
    """How the table's tokens were counted, and what a '?' cost needs."""
    counted = ("the teacher's tokenizer" if tokenizer_name(teacher)
               else "about 4 characters a token (set teacher.tokenizer to count exactly)")
    out = [f"\nprompt tokens: {counted}; output tokens: at most max_tokens per answer, so "
           "costs are upper bounds."]
    if any(ln.cost_usd is None for ln in lines):
        out.append("cost '?': set teacher.price_input_per_mtok and teacher.price_output_per_mtok "
                   "(USD per million tokens, from your provider's price list; teacher2.* too): "
                   f"the model is not in {TABLE}.")
    return out


def savings(teachers: dict[str, Any], lines: list[Line], system: str) -> list[str]:
    """Where each teacher's prices come from, and what its batch discount and the prompt cache
    take off the list price."""
    out = []
    for key, t in teachers.items():
        mine = [ln for ln in lines if ln.teacher_key == key and ln.list_usd is not None]
        r = rates(t)
        listed = sum(ln.list_usd or 0.0 for ln in mine)
        if not listed:  # not asked, unknown prices, or free (a local model)
            continue
        cost = sum(ln.cost_usd or 0.0 for ln in mine)
        cache_off = sum(ln.cache_off_usd for ln in mine)
        batch_off = listed - cost - cache_off
        prefix = shared_prefix(t, system)
        if cache_applies(t, prefix):
            why = f"the judge's instructions (~{prefix:,} tokens) read from it after the first call"
        elif r.min_cached_prefix and prefix < r.min_cached_prefix:
            why = (f"nothing: the judge's instructions (~{prefix:,} tokens) are under the "
                   f"{r.min_cached_prefix:,} tokens {t.model} caches at least")
        else:
            why = "nothing (not marked for caching)" if r.min_cached_prefix else \
                "unknown for this model"
        out.append(f"{key} {t.model} ({t.backend}): prices from {r.source}; list price "
                   f"${listed:,.2f}, of which the batch discount takes off ${batch_off:,.2f} "
                   f"and the prompt cache ${cache_off:,.2f} ({why}).")
    return out


def report(cfg: Any, lines: list[Line], rows: dict[str, int],
           accuracy: tuple[float, str] | None = None) -> str:
    out = [f"\nrubricforge build --estimate: recipe {cfg.recipe.name} (nothing asked, nothing "
           "written)"]
    if not lines:
        return "\n".join([*out, "the recipe asks no teacher"])
    out.append(f"pairs reaching the teacher: {rows['distill']:,} to distill, {rows['rl']:,} RL "
               "prompts\n")
    out += table(lines)
    out += notes(cfg.teacher, lines)[:1]
    out += savings({"teacher": cfg.teacher, "teacher2": cfg.teacher2}, lines, cfg.prompt.system)
    if cfg.teacher.max_cost_usd is not None:
        out.append(f"teacher.max_cost_usd={cfg.teacher.max_cost_usd}: the build stops sending "
                   "before its calls pass it.")
    if any(ln.projected for ln in lines):
        right, where = accuracy or (ZERO_SHOT_ACCURACY, "RM-R1's figure for zero-shot verdicts; "
                                    "--accuracy-from <eval.json> uses your teacher's")
        out.append(f"* projected from pass 1: pass 2 (and the label audit) ask about "
                   f"{1 - right:.0%} of it ({right:.0%} of verdicts right: {where}), the swap "
                   "check about every kept pair.")
    return "\n".join([*out, *notes(cfg.teacher, lines)[1:]])
