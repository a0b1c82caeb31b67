"""`rubricforge eval`: score a judge on the reward benchmarks with the build's own parts.

The judge is the configured teacher (any backend: an API model before paying for
distillation, or a trained checkpoint served by vLLM after), asked with the build's judge
prompt (`prompt=`) and read with the RL reward's verdict rule.

The headline follows the published protocol (RewardBench's generative harness, RM-R1's tables):
one judgement per comparison, the better answer placed as Chatbot A or B by a draw from `seed`
(recorded with each judgement), a missing verdict scored as that benchmark's harness scores it.
RewardBench 2 is asked as its leaderboard asks a generative judge (`eval.rb2_protocol`): four
answers at once, the correct one at a drawn position, and Ties rated answer by answer; or every
answer rated; or, for judges trained only on pairs, pairwise.
With `eval.both_orders`, every comparison is also asked the other way round, and the report
adds the stricter figure (right only when both orders are) and the swap agreement; the
published order's requests are the same requests, so nothing is asked twice. Answers go
through the same cache, cost cap and limits as a build; the benchmarks are read like the
decontaminate stage reads them (`conf/benchmark/`). Scoring rules: stages/benchmarks/pairwise.py.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

from pipeline.engine.batches import request_table
from pipeline.engine.config import ConfigError, expand
from pipeline.engine.reading import InputLoadError, read_dataset
from pipeline.engine.stage import Resources
from pipeline.output.eval_report import headline, pct, score_text, write_eval_report
from pipeline.rules.best_of_four import LETTERS, best_of_four_verdict
from pipeline.rules.judge_prompt import best_of_four_messages, judge_messages, rating_messages
from pipeline.rules.keys import rank_key
from pipeline.rules.rating import rating_of
from pipeline.rules.verdict import COST_CAP, SWAPPED, WINNER_TO_LABEL, verdict_of
from pipeline.teachers.client import ask
from pipeline.teachers.requests import uncached
from stages.benchmarks import SAMPLES_DIR
from stages.benchmarks.pairwise import (
    BENCHMARKS,
    FOUR,
    PAIR,
    PROTOCOLS,
    RATE,
    Item,
    Outcomes,
    PairwiseBenchmark,
    benchmark,
    first_per_group,
    rmb_four_sets,
)

log = logging.getLogger("rubricforge")
WHO = "eval"  # the name the teacher's progress and spend are reported under


@dataclass(frozen=True)
class Judgement:
    """One request: a comparison of an item with the better answer where `winner` says (pair),
    four answers with the correct one at letter `winner` (four), or one answer to rate (rate)."""

    benchmark: str
    item: str
    slot: str
    winner: str  # pair: model_a when the better answer is Chatbot A; four: its letter
    messages: list[dict[str, str]]
    drawn: bool  # the seeded placement (the published protocol), not its swap
    kind: str = PAIR


def drawn_winner(seed: int, benchmark: str, item: str, slot: str) -> str:
    """Where the published protocol places the better answer: a fair draw per comparison,
    from the seed alone (the same for every run, backend and limit)."""
    digest = rank_key(seed, "eval", f"{benchmark}/{item}/{slot}", 0)
    return ("model_a", "model_b")[int(digest[-1], 16) % 2]


def drawn_letter(seed: int, benchmark: str, item: str) -> str:
    """Where the correct answer stands among four: a fair draw per item, from the seed alone."""
    digest = rank_key(seed, "eval", f"{benchmark}/{item}/four", 0)
    return LETTERS[int(digest[-4:], 16) % 4]


def kind_of(cfg: Any, name: str) -> PairwiseBenchmark:
    """Benchmark `name`'s reader and scorer, RewardBench 2 asked by `eval.rb2_protocol`."""
    return benchmark(cfg.benchmarks[name].name, cfg.eval.rb2_protocol)


def check(cfg: Any) -> None:
    """The eval settings, before any work (one line naming the key)."""
    for name in cfg.eval.benchmarks:
        if name not in cfg.benchmarks:
            raise ConfigError(f"eval.benchmarks names '{name}', which is not under "
                              f"benchmarks (known: {', '.join(sorted(cfg.benchmarks))})")
        kind = cfg.benchmarks[name].name
        if kind not in BENCHMARKS:
            raise ConfigError(f"eval.benchmarks: '{name}' has no pairwise reading "
                              f"(readings: {', '.join(sorted(BENCHMARKS))})")
    if cfg.eval.rb2_protocol not in PROTOCOLS:
        raise ConfigError(f"eval.rb2_protocol={cfg.eval.rb2_protocol}: choose one of "
                          f"{', '.join(PROTOCOLS)}")
    if cfg.eval.limit is not None and cfg.eval.limit < 1:
        raise ConfigError("eval.limit must be >= 1, or null for all")
    if not cfg.eval.benchmarks:
        raise ConfigError("eval.benchmarks is empty: name at least one benchmark")


def load_items(cfg: Any) -> dict[str, list[Item]]:
    """Each benchmark's items (the first `eval.limit` per subset), ids made unique."""
    out = {}
    for name in cfg.eval.benchmarks:
        bcfg = cfg.benchmarks[name]
        kind = kind_of(cfg, name)
        key = f"benchmarks.{name}"
        ds = read_dataset(key, bcfg, SAMPLES_DIR / bcfg.sample_file if cfg.eval.use_samples
                          else None)
        missing = [c for c in kind.columns if c not in ds.column_names]
        if missing:
            raise InputLoadError(f"{key}: no column(s) {missing} for its pairwise reading "
                                 f"(columns: {', '.join(ds.column_names)})")
        try:
            read = kind.items(ds.select_columns(list(kind.columns)))
        except ValueError as exc:
            raise InputLoadError(f"{key}: {exc}") from None
        items = first_per_group(read, cfg.eval.limit)
        seen: Counter = Counter()
        for it in items:
            seen[it.id] += 1
            if seen[it.id] > 1:
                it.id = f"{it.id}#{seen[it.id] - 1}"
        out[name] = items
        log.warning("eval: %s: %d items, %d judgements", name, len(items),
                    sum(len(kind.asks(it)) for it in items))
    return out


def judgements(cfg: Any, items: dict[str, list[Item]]) -> list[Judgement]:
    """Every request: each comparison in its drawn order (and with `eval.both_orders` also in
    the other), each four-answer judgement with the correct answer at its drawn letter, each
    answer to rate."""
    # read once as plain values, not through the config for every request (as the stages do)
    templates, both_orders = OmegaConf.to_object(cfg.prompt), cfg.eval.both_orders
    out = []
    for name, its in items.items():
        kind = kind_of(cfg, name)
        for it in its:
            for slot, what in kind.asks(it):
                if what == FOUR:
                    letter = drawn_letter(cfg.seed, name, it.id)
                    others = list(it.answers[1:4])
                    others.insert(LETTERS.index(letter), it.answers[0])
                    out.append(Judgement(name, it.id, slot, letter, best_of_four_messages(
                        it.prompt, others, templates), True, FOUR))
                elif what == RATE:
                    answer = it.answers[int(slot.removeprefix("rate"))]
                    out.append(Judgement(name, it.id, slot, "", rating_messages(
                        it.prompt, answer, templates, it.group == "Ties"), True, RATE))
                else:
                    good, bad = it.comparisons[slot]
                    drawn = drawn_winner(cfg.seed, name, it.id, slot)
                    for winner in [drawn, SWAPPED[drawn]] if both_orders else [drawn]:
                        a, b = (good, bad) if winner == "model_a" else (bad, good)
                        out.append(Judgement(name, it.id, slot, winner,
                                             judge_messages(it.prompt, a, b, templates),
                                             winner == drawn))
    return out


def run_eval(cfg: Any) -> dict[str, Any]:
    """Ask what the cache cannot answer, score every benchmark, write the report."""
    import ray

    from pipeline.engine.ray_session import joined_cluster, ray_session
    from pipeline.engine.terminal import others_to_log
    from pipeline.teachers.runtime import TeacherRuntime

    out = expand(cfg.eval.output_dir)
    logs = out.parent / "logs"
    with others_to_log(logs / f"{out.name}-eval.log") as terminal:
        log.warning("Ray, vLLM and datasets write to %s", logs / f"{out.name}-eval.log")
        items = load_items(cfg)
        todo = judgements(cfg, items)
        t = cfg.teacher
        conversations = [j.messages for j in todo]
        pending = uncached(t, conversations)
        log.warning("eval: teacher %s: %d requests, %d not in the cache", t.model, len(todo),
                    len(pending))
        if not pending:  # every answer is in the cache: no Ray, no teacher started
            results = ask(WHO, t, None, conversations)
        else:
            with ray_session(cfg.ray), contextlib.ExitStack() as stack:
                teachers = TeacherRuntime(cfg, ["teacher"], stack,
                                          logs / f"{out.name}-teacher.log",
                                          joined_cluster(cfg.ray), terminal)
                endpoints, answered = teachers.answer(
                    ray.data.from_arrow(request_table(pending)), len(pending), t, "teacher",
                    WHO, Resources())
                results = ask(WHO, t, endpoints, conversations, teachers.meters["teacher"],
                              answered)
                teachers.close()
    report, lines = score_all(cfg, items, todo, results)
    write_eval_report(out, report, lines)
    return report


def outcome_of(verdict: str | None, winner: str) -> float | None:
    """1.0 when the verdict (read with the RL reward's rule) names the better answer, 0.0 when
    it names the worse one, None when there is none (a failed call, a trace without one): each
    benchmark scores that its own way."""
    return None if verdict is None else float(verdict == WINNER_TO_LABEL[winner])


def read_judgement(j: Judgement, content: str | None) -> tuple[str | None, float | None]:
    """What the trace says (a letter, or a rating) and the outcome the scorer reads: 1.0/0.0/None
    for a pair or four answers, the rating (or None) for one answer."""
    if j.kind == RATE:
        rating = rating_of(content)
        return (None if rating is None else str(rating)), rating
    if j.kind == FOUR:
        letter = best_of_four_verdict(content)
        return letter, None if letter is None else float(letter == j.winner)
    verdict = verdict_of(content or "")
    return verdict, outcome_of(verdict, j.winner)


def both_orders_outcome(pair: list[float | None]) -> float | None:
    """Right only when both orders are; wrong when either is; else (a verdict missing, none
    wrong) no verdict."""
    if any(v == 0.0 for v in pair):
        return 0.0
    return 1.0 if all(v == 1.0 for v in pair) else None


def score_all(cfg: Any, items: dict[str, list[Item]], todo: list[Judgement],
              results: list[Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The report (per benchmark, its own rule, on the published protocol; the both-orders
    figure beside it when asked), and one line per judgement."""
    published: dict[str, Outcomes] = {name: {it.id: {} for it in its} for name, its in items.items()}
    orders: dict[tuple[str, str, str], list[float | None]] = {}
    lines = []
    counts: Counter = Counter()
    for j, r in zip(todo, results, strict=True):
        verdict, outcome = (None, None) if r.error else read_judgement(j, r.content)
        if j.drawn:
            published[j.benchmark][j.item][j.slot] = outcome
        orders.setdefault((j.benchmark, j.item, j.slot), []).append(outcome)
        counts["judgements"] += 1
        counts["cached"] += bool(r.cached)
        counts["errors"] += bool(r.error)
        counts["no_verdict"] += outcome is None
        counts["not_sent"] += bool(r.error and r.error.startswith(COST_CAP))
        counts["pairs"] += j.kind == PAIR
        counts["right"] += j.kind == PAIR and outcome == 1.0
        lines.append({"benchmark": j.benchmark, "item": j.item, "comparison": j.slot,
                      "kind": j.kind, "better_answer": WINNER_TO_LABEL.get(j.winner, j.winner)
                      or None, "drawn_order": j.drawn, "verdict": verdict,
                      "right": None if j.kind == RATE else outcome == 1.0,
                      "cached": bool(r.cached), "error": r.error, "trace": r.content})
    benchmarks = {}
    for name, its in items.items():
        kind = kind_of(cfg, name)
        comps = [(it.id, s) for it in its for s, what in kind.asks(it) if what != RATE]
        pairs = {key: v for key, v in orders.items() if key[0] == name and len(v) == 2}
        agree = [v[0] == v[1] for v in pairs.values() if None not in v]
        both = None
        if pairs:
            strict: Outcomes = {it.id: {} for it in its}
            for (_, item, slot), v in pairs.items():
                strict[item][slot] = both_orders_outcome(v)
            both = kind.score(its, strict)
        benchmarks[name] = {
            "items": len(its), "judgements": sum(len(kind.asks(it)) for it in its),
            "comparisons": len(comps),
            "comparisons_right": sum(published[name][i][s] == 1.0 for i, s in comps),
            **kind.score(its, published[name]),
            "both_orders": both,
            "swap_agreement": round(sum(agree) / len(agree), 4) if agree else None}
    combined = {}
    if "rmb" in benchmarks and "rmb_bon" in benchmarks:
        combined["rmb_four_sets"] = rmb_four_sets(benchmarks["rmb"], benchmarks["rmb_bon"])
    t = cfg.teacher
    report = {"teacher": {"backend": t.backend, "model": t.model,
                          **({"checkpoint": t.checkpoint} if getattr(t, "checkpoint", None)
                             else {})},
              "protocol": {"orders": "drawn, one per comparison", "seed": cfg.seed,
                           "both_orders_asked": cfg.eval.both_orders,
                           "rewardbench2": cfg.eval.rb2_protocol},
              "limit": cfg.eval.limit, "use_samples": cfg.eval.use_samples,
              **{k: counts[k] for k in ("judgements", "cached", "errors", "no_verdict",
                                        "not_sent")},
              # each request on its own: what `build --estimate --accuracy-from` projects
              # pass 2 with
              # (pairwise judgements only: what a pass asks)
              "verdict_accuracy": round(counts["right"] / counts["pairs"], 4)
              if counts["pairs"] else None,
              "benchmarks": benchmarks, **combined,
              "config": OmegaConf.to_container(cfg, resolve=True)}
    return report, lines


def summary(report: dict[str, Any], out: str) -> str:
    """The report as a few lines: each benchmark's score and the numbers it is made of."""
    proto = report["protocol"]
    lines = [f"\nrubricforge eval: teacher {report['teacher']['model']} "
             f"({report['teacher']['backend']}), one judgement per comparison in a drawn A/B "
             f"order (seed {proto['seed']})"
             f"{', both orders asked too' if proto['both_orders_asked'] else ''}"
             f"{', first ' + str(report['limit']) + ' per subset' if report['limit'] else ''}"]
    for name, b in report["benchmarks"].items():
        parts = [f"{k} {pct(v)}" for k, v in headline(b).items()]
        both = b["both_orders"]
        extra = (f"; both orders {score_text(both)}, swap agreement {pct(b['swap_agreement'])}"
                 if both else "")
        lines.append(f"  {name:13s} {score_text(b):>6s}  ({b['items']} items, "
                     f"{b['comparisons_right']}/{b['comparisons']} comparisons right{extra})")
        if parts:
            lines.append("      " + ", ".join(parts))
        if b["score"] is None and "not_judged" in b:
            why = ("Ties cannot be judged pairwise (eval.rb2_protocol=pairwise)"
                   if b["protocol"] == "pairwise" else f"{', '.join(b['not_judged'])} not judged")
            lines.append(f"      not the RewardBench 2 score: {why}; the figure is the mean of "
                         "the other subsets")
        elif "protocol" in b:
            lines.append(f"      RewardBench 2 asked {b['protocol'].replace('_', '-')}: "
                         f"{b['judgements']} judgements")
    if "rmb_four_sets" in report:
        four = report["rmb_four_sets"]
        lines.append(f"  RMB, four sets {pct(four['score'])}  ("
                     + ", ".join(f"{k} {pct(v)}" for k, v in four["sets"].items()) + ")")
    lines.append(f"{report['judgements']} judgements: {report['cached']} from the cache, "
                 f"{report['errors']} failed, {report['no_verdict']} without a verdict (scored "
                 f"as each benchmark's harness scores them); single-order verdict accuracy "
                 f"{pct(report['verdict_accuracy'])}"
                 + (f"; {report['not_sent']} not sent: teacher.max_cost_usd reached, rerun with "
                    "a higher cap to finish" if report.get("not_sent") else ""))
    lines.append(f"report: {out}/eval.md (eval.json, eval.png, judgements.parquet)")
    return "\n".join(lines)


def estimate_text(cfg: Any) -> str:
    """What `eval` would ask and cost, asking nothing: the same table as `build --estimate`."""
    from pipeline.estimate import line_of, notes, table

    items = load_items(cfg)
    todo = judgements(cfg, items)
    t = cfg.teacher
    line = line_of("eval", t, len(todo), uncached(t, [j.messages for j in todo]))
    asked: Counter = Counter((j.benchmark, j.kind) for j in todo)
    words = {PAIR: "pairwise", FOUR: "best-of-four", RATE: "ratings"}
    per = "; ".join(f"{name} " + " + ".join(f"{asked[(name, k)]:,} {words[k]}" for k in words
                                            if asked[(name, k)]) for name in items)
    return "\n".join([
        f"\nrubricforge eval --estimate: teacher {t.model} (nothing asked, nothing written)",
        f"requests: {per}; pairs in {'both A/B orders' if cfg.eval.both_orders else 'one drawn order each'}"
        "\n", *table([line]), *notes(t, [line])])
