"""The real build on the shipped samples: Ray, a teacher, shards, manifest.

Two shared builds (tests/conftest.py), each run twice with one cache: `runs`, every sample row of
four sources judged by the loopback teacher, for what the whole sample proves (every row
accounted for, quarantine, contamination, labels, the card, S3, a cluster, the Hub); and `real`,
a handful of pairs judged by the real local teacher (a vLLM server for pass 1, offline engines
for pass 2), for what only a real model proves. The second run of each asks the teacher nothing
and writes the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard

from pipeline.output.card import funnel_rows
from pipeline.rules.judge_prompt import evidence
from pipeline.rules.keys import row_text
from pipeline.rules.trace_checks import check_trace
from pipeline.settings import load_config
from pipeline.teachers.cpu_dtype import serving_dtype
from stages.sources import get_source
from stages.sources.base import SAMPLES_DIR

from conftest import E2E_MAX_TOKENS, PUBLISHED, SECRETS, build, start_build

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
QUARANTINE_REASONS = {"missing_field", "empty_field", "identical_answers", "too_long",
                      "prompt_mismatch", "last_turn_not_assistant", "prompt_not_ending_with_user"}
TEACHER_REASONS = {"wrong_verdict", "bad_format", "no_verdict", "ambiguous_verdict",
                   "truncated", "teacher_error", "empty_trace", "template_copy", "repetitive",
                   "misquote"}


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def part(out: Path, name: str) -> pa.Table:
    files = sorted((out / name).glob("train-*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None


def test_summary_is_printed(runs):
    out, stdout = runs["first"]
    assert "rows and seconds per stage:" in stdout and "every input row accounted for" in stdout
    assert str(out) in stdout
    # consecutive row stages ran as one pass: their time is one step's
    steps = json.loads((out.parent / "logs" / f"{out.name}-stages.json").read_text())["seconds"]
    assert "collect + validate + decontaminate" in steps and "ran in one pass" in stdout
    assert all(s in " + ".join(steps).split(" + ") for s in ("exact_dedup", "write"))


def test_the_terminal_shows_rubricforges_lines_and_the_log_the_rest(real):
    """A cold build (a vLLM server for pass 1, offline engines in Ray actors for pass 2) and a
    warm one: every line before the summary is rubricforge's own; Ray's, vLLM's and the
    workers' lines are in the build's log file; no rate counts answers read from the cache."""
    runs = real
    for key in ("first", "second"):
        out, stdout = runs[key]
        head, found, _ = stdout.partition("\nrubricforge build: recipe")
        assert found, stdout[-2000:]
        strays = [line for line in head.splitlines()
                  if line.strip() and not re.match(r"\d\d:\d\d:\d\d rubricforge: ", line)]
        assert not strays, strays[:10]
        logged = (out.parent / "logs" / f"{out.name}-build.log").read_text()
        assert "rubricforge: started a local Ray" in logged
        others = [line for line in logged.splitlines()
                  if line.strip() and not re.match(r"\d\d:\d\d:\d\d rubricforge: ", line)]
        assert others, "Ray's own lines went to the log"


def test_every_input_row_is_accounted_for(runs):
    out, _ = runs["first"]
    m = manifest(out)
    for source, n in m["inputs"].items():
        lines = (SAMPLES_DIR / f"{source}.jsonl").read_text().splitlines()
        assert n == len(lines)
        acc = m["accounting"][source]
        assert acc["balanced"] and acc["accounted_rows"] == n
    assert sum(m["totals"].values()) == sum(m["inputs"].values())
    rows_on_disk = {name: (part(out, name).num_rows if part(out, name) else 0)
                    for name in ("sft", "rl", "rejected", "quarantine", "deduplicated")}
    assert rows_on_disk["sft"] == m["sft_rows"]
    assert rows_on_disk["rl"] == m["totals"]["kept_rl"]
    assert rows_on_disk["rejected"] == m["totals"]["rejected"]
    assert rows_on_disk["quarantine"] == m["totals"]["quarantined"]
    assert rows_on_disk["deduplicated"] == m["totals"]["deduplicated"] > 0
    stages = m["stages"]
    for before, after in zip(stages, stages[1:], strict=False):
        assert before["rows_out"] == after["rows_in"]
        assert before["rows_in"] - sum(before["removed"].values()) == before["rows_out"]
    assert stages[-1]["rows_out"] == m["totals"]["kept_sft"] + m["totals"]["kept_rl"]


def test_each_input_row_is_found_in_exactly_one_part(runs):
    """Not the manifest's arithmetic: every (source, source_index) of the input is looked up in
    the parts on disk. Rows that left carry their index; a kept row is found by its content
    hash among the source's rows that did not leave."""
    out, _ = runs["first"]
    cfg = load_config(runs["common"])
    found: Counter = Counter()
    for name in ("rejected", "quarantine", "deduplicated"):
        found.update((r["source"], r["source_index"]) for r in part(out, name).to_pylist())
    ids: dict[tuple[str, str], list[int]] = {}
    for name in cfg.sources:
        source, scfg = get_source(name), cfg.sources[name]
        for r in source.map_batch(source.raw_table(scfg, use_sample=True), scfg).to_pylist():
            ids.setdefault((name, r["pair_id"]), []).append(r["source_index"])
    kept = Counter((r["source"], r["pair_id"]) for name in ("sft", "rl")
                   for r in part(out, name).to_pylist())
    for (source, pid), n in kept.items():
        left = [i for i in ids[(source, pid)] if (source, i) not in found]
        assert len(left) == n, f"{source} pair {pid}: kept {n} times, {len(left)} input rows"
        found.update((source, i) for i in left)
    expected = {(name, i) for name, n in manifest(out)["inputs"].items() for i in range(n)}
    assert set(found) == expected and set(found.values()) == {1}


def test_quarantine_and_rejection_reasons(runs):
    out, _ = runs["first"]
    quarantine = part(out, "quarantine").to_pylist()
    assert {r["reason"] for r in quarantine} == QUARANTINE_REASONS
    rows = part(out, "rejected").to_pylist()
    rejected = Counter(r["reason"] for r in rows)
    assert rejected["excluded_subset"] == 3 and rejected["tie"] == 2
    # the two math pairs shipped with their labels flipped: contested by the reference answer
    # before any teacher saw them
    flipped = [r for r in rows if r["reason"] == "contested_label"
               and r["detail"].startswith("reference:")]
    assert sorted((r["source"], r["source_index"]) for r in flipped) == [
        ("math_step_dpo", 40), ("math_step_dpo", 41)]
    assert all(r["teacher_model"] is None and "not the reference" in r["detail"] for r in flipped)
    m = manifest(out)
    labels = {(x["source"], x["evidence"]): x for x in m["quality"]["labels"]}
    assert labels[("math_step_dpo", "reference")]["contested"] == 2
    assert labels[("math_step_dpo", "reference")]["verified"] > 20
    # the label audit: each pair pass 1 judged wrong was judged again, A and B swapped, before
    # pass 2; where that judgement agreed with pass 1, pass 2 never saw the pair
    calls = {c["call"]: c for c in m["teacher"]["by_call"]}
    teachers = [r for r in rows if r["reason"] == "contested_label" and r not in flipped]
    assert teachers and all(r["decided_by"] == "label_audit" and r["pass_index"] == 1
                            and r["detail"].startswith("teachers: pass 1 (loopback-judge) and "
                                                       "the swapped order") for r in teachers)
    # a coin-flip judge: about half of pass 1 wrong, about half of those contested again
    assert len(teachers) < calls["audit"]["calls"] < calls["pass 1"]["calls"]
    assert calls["pass 2"]["calls"] >= calls["audit"]["calls"] - len(teachers)
    assert {s for s, kind in labels if kind == "teachers"} >= {"skywork", "code_preference_pairs"}
    assert set(rejected) - {"excluded_subset", "tie", "contaminated", "contested_label"} <= \
        TEACHER_REASONS


def test_benchmark_prompts_are_removed_and_counted(runs):
    """The shipped benchmark samples hold a few of the sources' prompts, verbatim or re-cased,
    re-spaced or as a conversation; each is removed and counted per source and benchmark."""
    out, _ = runs["first"]
    m = manifest(out)
    dirty = [r for r in part(out, "rejected").to_pylist() if r["reason"] == "contaminated"]
    assert {b for r in dirty for b in r["contaminated_by"]} == {
        "rewardbench", "rewardbench2", "rm_bench", "rmb"}
    assert all(r["decided_by"] == "decontaminate" and " id " in r["detail"] for r in dirty)
    per_pair = Counter((r["source"], b) for r in dirty for b in r["contaminated_by"])
    assert {(c["source"], c["benchmark"]): c["rows"] for c in m["contamination"]} == per_pair
    # the helpsteer3 copy of "Why is the sky blue?" goes as well as skywork's
    assert ("helpsteer3", "rewardbench") in per_pair and ("skywork", "rmb") in per_pair
    summary = next(s["summary"] for s in m["stages"] if s["stage"] == "decontaminate")
    assert summary["ngram"] == 13 and summary["benchmarks"]["rmb"]["prompts"] == 3
    assert "## Benchmark decontamination" in (out / "README.md").read_text()


def test_sft_rows_are_real_verified_traces(real):
    runs = real
    out, _ = runs["first"]
    m = manifest(out)
    sft = part(out, "sft")
    assert sft is not None and sft.num_rows >= 1, "the local model should get a few right"
    first_pass = sum(c["calls"] for c in m["teacher"]["by_call"] if c["call"] == "pass 1")
    assert sft.num_rows + sum(r["rows"] for r in m["reasons"]
                              if r["stage"] in ("verdict_filter", "bootstrap")) == first_pass
    cfg = load_config(runs["common"])
    pairs = {}
    for name in cfg.sources:
        source, scfg = get_source(name), cfg.sources[name]
        pairs.update((p["pair_id"], p) for p in source.map_batch(
            source.raw_table(scfg, use_sample=True), scfg).to_pylist())
    for r in sft.to_pylist():
        assert r["messages"][:-1] == r["context_messages"]
        trace = r["messages"][-1]
        assert trace["role"] == "assistant" and r["judge_response"] == [trace]
        # the whole filter again, substance included: no copied layout, no invented quote
        shown = evidence(pairs[r["pair_id"]], r["winner"])
        assert check_trace(trace["content"], r["winner"], shown, cfg.prompt.system).reason == ""
        assert r["quote_fidelity"] is None  # held to the grammar, it cites with summaries
        assert r["teacher_model"] == "SmolLM2-135M-Instruct" and r["completion_tokens"] > 0
        assert r["pass_index"] in (1, 2) and r["num_tokens"] > r["completion_tokens"]
    hint = load_config([]).prompt.hint.split("{label}")[0][:60]
    assert not any(hint in m["content"] for r in sft.to_pylist() for m in r["messages"])
    loaded = datasets.load_dataset("parquet", data_dir=str(out / "sft"), split="train",
                                   cache_dir=runs["hf_cache"])
    assert loaded.num_rows == sft.num_rows


def test_rl_rows_have_verl_and_rmr1_columns(runs):
    out, _ = runs["first"]
    rl = datasets.load_dataset("parquet", data_dir=str(out / "rl"), split="train",
                               cache_dir=runs["hf_cache"])
    assert rl.num_rows > 0
    f = rl.features
    assert f["data_source"].dtype == "string" and f["ability"].dtype == "string"
    assert set(f["reward_model"]) == {"style", "ground_truth"}
    assert {"split", "index"} <= set(f["extra_info"])
    for i, r in enumerate(rl):
        assert r["prompt"] == r["context_messages"]
        assert [m["role"] for m in r["prompt"]] == ["system", "user"]
        assert r["reward_model"] == {"style": "rule", "ground_truth": r["winner"]}
        assert r["winner"] in ("model_a", "model_b") and r["extra_info"]["index"] == i
        assert 0 < r["num_tokens"] <= 4096
    winners = Counter((r["source"], r["winner"]) for r in rl)
    for source in {s for s, _ in winners}:
        assert abs(winners[(source, "model_a")] - winners[(source, "model_b")]) <= 1


def test_offline_vllm_engines_write_what_the_api_backend_writes(real):
    """Pass 2 (teacher2=vllm_engines) ran on offline engines, pass 1 on the OpenAI-compatible
    server: their rows carry the same columns, all filled; their cache records have one shape;
    a cut-off answer is `truncated` either way; and a warm rerun starts no engine. Two model
    instances on the same CPUs are not chained (each would run slower beside the other): the
    engines start when pass 2 does."""
    runs = real
    out, stdout = runs["first"]
    assert "starting 1 offline vLLM engine(s)" in stdout
    assert ("asking teacher -> bootstrap pass by pass: their teachers are different model "
            "instances on this machine's CPUs") in stdout
    assert "chains sent" not in stdout
    assert "offline vLLM engine" not in runs["second"][1]
    pass2 = next(c for c in manifest(out)["teacher"]["by_call"] if c["call"] == "pass 2")
    assert pass2["requests"] > 0 and pass2["errors"] == 0 and pass2["completion_tokens"] > 0
    # every answered row, kept or not: a handful of pairs need not keep one of each pass
    sft, rejected = part(out, "sft").to_pylist(), part(out, "rejected").to_pylist()
    answered = [r for r in sft + rejected if r["teacher_model"] is not None]
    kept_cols = set(sft[0]) - {"quote_fidelity"}  # held to the grammar, it quotes nothing
    for p in (1, 2):
        rows = [r for r in answered if r["pass_index"] == p]
        assert rows and all(r["latency_s"] > 0 and r["prompt_tokens"] > 0
                            and r["completion_tokens"] > 0 for r in rows), f"pass {p}"
        assert all(r[k] is not None for r in sft if r["pass_index"] == p for k in kept_cols)
    cut = [r for r in rejected if r["reason"] == "truncated"]
    assert all(r["finish_reason"] == "length" and r["completion_tokens"] == E2E_MAX_TOKENS
               for r in cut)
    records = [json.loads(f.read_text()) for f in (runs["root"] / "cache").glob("??/*.json")]
    assert len(records) >= pass2["requests"] and len({tuple(sorted(r)) for r in records}) == 1
    # both load the weights in the number format this CPU is fastest in (teacher.dtype: auto;
    # vLLM's own auto is bfloat16 for the float32 checkpoint)
    chosen = serving_dtype(load_config(runs["common"]).teacher)
    logs = out.parent / "logs"
    loaded = [re.findall(r"Initializing a V1 LLM engine .*?, dtype=torch\.(\w+)",
                         (logs / f"{out.name}-{name}.log").read_text()) for name in ("teacher", "build")]
    assert loaded == [[{"auto": "bfloat16"}.get(chosen, chosen)]] * 2, (chosen, loaded)


@pytest.mark.parametrize("shared", ["runs", "real"])
def test_warm_rerun_asks_nothing_and_writes_the_same_bytes(shared, request):
    runs = request.getfixturevalue(shared)
    first, second = manifest(runs["first"][0]), manifest(runs["second"][0])
    assert first["teacher"]["requests"] > 0
    assert second["teacher"]["requests"] == 0
    assert second["teacher"]["cached"] == first["teacher"]["calls"]
    assert "starting the local teacher" not in runs["second"][1]
    assert "req/s" not in runs["second"][1], "nothing was sent: no rate to show"
    assert first["files"] == second["files"], "same config + same cache = byte-identical shards"
    assert first["accounting"] == second["accounting"]


def test_estimate_counts_the_calls_before_anything_is_asked(real):
    runs = real
    m = manifest(runs["first"][0])
    pass1 = next(c for c in m["teacher"]["by_call"] if c["call"] == "pass 1")
    # pass 2 projected with the accuracy `rubricforge eval` measured (its eval.json)
    measured = runs["root"] / "eval.json"
    measured.write_text(json.dumps({"verdict_accuracy": 0.4,
                                    "teacher": {"model": "SmolLM2-135M-Instruct"}}))
    done = build("--estimate", f"output.dir={runs['root']}/never", *runs["common"],
                 "--accuracy-from", str(measured))
    assert done.returncode == 0, done.stdout[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.strip().startswith("teacher "))
    calls, cached, to_ask = (int(v.replace(",", "")) for v in line.split()[2:5])
    assert (calls, cached, to_ask) == (pass1["calls"], pass1["calls"], 0), "all in the cache"
    assert "bootstrap*" in done.stdout and "starting the local teacher" not in done.stdout
    pass2 = next(x for x in done.stdout.splitlines() if x.strip().startswith("bootstrap*"))
    assert int(pass2.split()[2].replace(",", "")) == round(calls * 0.6)
    assert "60% of it (40% of verdicts right: measured by rubricforge eval" in done.stdout
    assert not (runs["root"] / "never").exists(), "an estimate writes nothing"
    # with nothing cached and prices set: every call to ask, prompt tokens as the vLLM server
    # counted them in the real build, output at most max_tokens each, and their price
    common = [c for c in runs["common"] if not c.startswith("teacher.cache_dir=")]
    cold = build("--estimate", f"output.dir={runs['root']}/never", *common,
                 f"teacher.cache_dir={runs['root']}/cold-cache", "teacher.price_input_per_mtok=2",
                 "teacher.price_output_per_mtok=8")
    assert cold.returncode == 0, cold.stdout[-3000:]
    line = next(x for x in cold.stdout.splitlines() if x.strip().startswith("teacher "))
    *counts, cost = line.split()[2:8]
    calls, cached, to_ask, prompt_tok, output_tok = (int(v.replace(",", "")) for v in counts)
    assert (calls, cached, to_ask) == (pass1["calls"], 0, pass1["calls"])
    assert prompt_tok == pass1["prompt_tokens"] and output_tok == calls * E2E_MAX_TOKENS
    assert float(cost) == round((prompt_tok * 2 + output_tok * 8) / 1e6, 2) > 0


def test_card_makes_the_output_a_hub_repository(runs):
    out, _ = runs["first"]
    m = manifest(out)
    card = DatasetCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "other"  # cc-by-4.0 and `other` sources mixed
    assert {"language", "task_categories", "size_categories", "tags", "pretty_name"} <= set(data)
    configs = {c["config_name"]: c for c in data["configs"]}
    assert {"sft", "rl", "rejected", "quarantine"} <= set(configs)
    for name, total in (("sft", m["sft_rows"]), ("rl", m["totals"]["kept_rl"])):
        loaded = datasets.load_dataset(str(out), name, split="train", cache_dir=runs["hf_cache"])
        assert loaded.num_rows == total
    for row in funnel_rows(m):
        n = m["accounting"][row["source"]]
        assert row["input"] == n["input_rows"] and row["sft"] == n.get("kept_sft", 0)
        assert (row["quarantined"] + row["deduplicated"] + row["excluded"] + row["contaminated"]
                + row["rl"] + row["rejected_by_filter"] + row["sft"]) == row["input"]
        assert f"| {row['source']} | {row['input']} | {row['quarantined']} |" in card.text
    assert m["command"] in card.text and m["config_sha256"] in card.text
    for plot in ("funnel", "accuracy", "trace_length"):
        png = out / "assets" / f"{plot}.png"
        assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
        assert f"assets/{plot}.png" in card.text


@pytest.mark.parametrize("shared", ["runs", "real"])
def test_no_secret_in_any_output_or_log(shared, request):
    runs = request.getfixturevalue(shared)
    texts = [runs["first"][1], runs["second"][1]]
    for path in runs["root"].rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    for secret in SECRETS.values():
        assert not any(secret in t for t in texts)


def test_no_prompt_lands_in_both_sft_and_rl(runs):
    """Dedup runs before the split: a normalized prompt is on one side only."""
    out, _ = runs["first"]
    cfg = load_config(["+source@sources.helpsteer3=helpsteer3"])
    prompt_of = {}
    for name, scfg in cfg.sources.items():
        source = get_source(name)
        for r in source.map_batch(source.raw_table(scfg, use_sample=True), scfg).to_pylist():
            if r["prompt"]:
                prompt_of[r["pair_id"]] = row_text(r, "prompt")
    sides = {}
    for part_name, split in (("sft", "sft"), ("rl", "rl"), ("rejected", None)):
        table = part(out, part_name)
        for r in table.to_pylist() if table is not None else []:
            side = split or r["split"]
            if side:
                sides.setdefault(side, set()).add(prompt_of[r["pair_id"]])
    assert sides["sft"] and sides["rl"]
    assert not sides["sft"] & sides["rl"]
    dedup = part(out, "deduplicated").to_pylist()
    kept_ids = set(prompt_of)
    assert all(r["dup_of"] in kept_ids and r["reason"] in ("exact_dup", "near_dup") for r in dedup)


def test_s3_cache_and_output_give_the_same_dataset(runs, s3):
    """The teacher cache and the output on S3 (moto on loopback): the warm cache answers
    everything, and the shards on S3 are the local build's, byte for byte."""
    from pipeline.engine import storage

    url = "s3://rubricforge-test/e2e"
    storage.upload_dir(runs["root"] / "cache", f"{url}/cache")
    common = [c for c in runs["common"] if not c.startswith("teacher.cache_dir=")]
    done = build(f"output.dir={url}/out", f"teacher.cache_dir={url}/cache", *common, env=s3)
    assert done.returncode == 0, done.stdout[-4000:]
    m = json.loads(storage.read_bytes(f"{url}/out/manifest.json"))
    local = manifest(runs["first"][0])
    assert m["teacher"]["requests"] == 0 and m["teacher"]["cached"] == local["teacher"]["calls"]
    assert m["files"] == local["files"] and m["accounting"] == local["accounting"]
    on_s3 = storage.files_under(f"{url}/out")
    for rel, f in m["files"].items():
        assert hashlib.sha256(storage.read_bytes(f"{url}/out/{rel}")).hexdigest() == f["sha256"]
    assert {"manifest.json", "README.md", "assets/funnel.png"} <= set(on_s3)
    assert not [k for k in on_s3 if "partial" in k or ".tmp-" in k]
    assert set(storage.files_under(url)) == {f"out/{k}" for k in on_s3} | {
        f"cache/{k}" for k in storage.files_under(f"{url}/cache")}, "no staging left behind"


@pytest.fixture
def three_nodes():
    """Three Ray nodes on this machine (Ray's own test utility), one CPU each."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


def _kill_first_worker(cluster, title: str, proc: subprocess.Popen, has: str = "") -> str | None:
    """SIGKILL the first worker process of the cluster whose title starts with `title` (and
    holds `has`)."""
    import psutil

    raylets = [psutil.Process(n.all_processes["raylet"][0].process.pid)
               for n in cluster.list_all_nodes()]
    while proc.poll() is None:
        for worker in (w for r in raylets for w in r.children(recursive=True)):
            try:
                name = " ".join(worker.cmdline())
            except psutil.Error:
                continue
            if name.startswith(title) and has in name:
                worker.kill()
                return name
        time.sleep(0.1)
    return None


@pytest.mark.cluster
def test_a_three_node_cluster_builds_the_same_bytes_despite_a_killed_worker(runs, three_nodes):
    """Joined through RAY_ADDRESS (so the config is the same), with a stage actor (the token
    counter's) killed mid-build: Ray restarts it, and the output and manifest equal the one-node
    build's."""
    out = runs["second"][0]
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = start_build(f"output.dir={out}", *runs["common"],
                       env={"RAY_ADDRESS": three_nodes.address})
    # the actor pool maps bootstrap's and the token counter's batches in one pass:
    # MapWorker(MapBatches(apply_to_batch)->MapBatches(StageActor))
    killed = _kill_first_worker(three_nodes, "ray::MapWorker(", proc, has="StageActor")
    done = build(proc=proc)
    assert done.returncode == 0, done.stdout[-4000:]
    assert killed, "the build ended before a stage actor could be killed"
    assert f"joined the Ray cluster at {three_nodes.address}" in done.stdout
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before, "same config + same cache = the same files, manifest included"
    assert manifest(out)["teacher"]["requests"] == 0
    # a build not told to join (no ray.address, no RAY_ADDRESS) starts a Ray of its own beside
    # the cluster running on this machine, rather than joining it (a bare ray.init() would)
    alone = subprocess.run([sys.executable, "-c", (
        "from pipeline.engine.ray_session import ray_session; import ray\n"
        "from pipeline.settings import load_config\n"
        "with ray_session(load_config(['ray.num_cpus=2']).ray): "
        "print(ray.cluster_resources()['CPU'], len(ray.nodes()))")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    assert alone.returncode == 0 and alone.stdout.split() == ["2.0", "1"], alone.stderr[-2000:]


@pytest.mark.cluster
def test_a_killed_teacher_client_on_a_cluster_is_restarted_and_pays_only_what_was_in_flight(
        tmp_path, three_nodes):
    """With nothing cached, the actor walking the pairs' chains (pass 1, the filter, pass 2) is
    killed mid-stream on a three-node cluster: Ray restarts it, it reads back what was cached,
    asks the rest, and the build finishes with every row accounted for; only requests in flight
    at the kill (each teacher's 4 slots) may reach the provider twice."""
    from fake_openai import FakeOpenAI

    def slow(body: dict, n: int):
        time.sleep(0.3)
        return _valid_trace(body, n)

    with FakeOpenAI(slow) as server:
        proc = start_build(f"output.dir={tmp_path}/out", f"teacher.cache_dir={tmp_path}/cache",
                           "teacher=openai", "teacher.model=fake-judge",
                           f"teacher.base_url={server.base_url}", "teacher.concurrency=4",
                           "teacher2=openai", "teacher2.model=fake-judge",
                           f"teacher2.base_url={server.base_url}", "~recipe.stages.near_dedup",
                           "~recipe.stages.token_lengths",
                           env={"RAY_ADDRESS": three_nodes.address})
        deadline = time.monotonic() + 600
        while len(server.requests) < 6 and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        killed = _kill_first_worker(three_nodes, "ray::_Chainer", proc)
        done = build(proc=proc)
        asked = Counter(json.dumps(r["messages"]) for r in server.requests)
    assert done.returncode == 0, done.stdout[-4000:]
    assert killed, "the build ended before the teacher's client could be killed"
    m = manifest(tmp_path / "out")
    assert m["balanced"]
    twice = sum(n - 1 for n in asked.values())
    assert twice <= 8, f"{twice} requests asked again, more than were in flight"
    assert "bootstrap: chains sent" in done.stdout, "pass 2 was asked in the chains"


def _valid_trace(body: dict, n: int):
    """A well-formed trace that always says A (so about half are right), after 50 ms."""
    from fake_openai import completion

    time.sleep(0.05)
    return completion("<type>Chat</type>\n<rubric>Accuracy (weight 100%)<justify>Facts decide."
                      "</justify>\n</rubric>\n<eval><summary_A>first</summary_A> is right; "
                      "<summary_B>second</summary_B> is not.</eval>\n<answer>[[A]]</answer>")


def _kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL the build and every process of its session (its local Ray included)."""
    import psutil

    doomed = [p for p in psutil.process_iter(["pid"]) if _sid(p) == proc.pid]
    for p in doomed:
        with contextlib.suppress(psutil.Error):
            p.kill()
    proc.wait(timeout=60)
    psutil.wait_procs(doomed, timeout=30)


def _sid(p) -> int | None:
    try:
        return os.getsid(p.pid)
    except OSError:
        return None


def test_a_capped_build_then_a_killed_one_resume_without_asking_anything_twice(tmp_path):
    """Against a provider that throttles, fails, hangs, answers malformed, empty and truncated:
    a build capped by teacher.max_cost_usd stops sending at the cap and finishes cleanly; a
    build SIGKILLed mid-run is rerun to the end; the server answered no conversation twice."""
    from fake_openai import FakeOpenAI, Faults

    faults = Faults(_valid_trace, every={"rate_limit": 7, "server_error": 11, "hang": 29,
                                         "malformed": 31, "empty": 37, "length": 41}, hang_s=3.0)
    with FakeOpenAI(faults) as server:
        remote = [setting for b in ("teacher", "teacher2") for setting in (
            f"{b}=openai", f"{b}.model=fake-judge", f"{b}.base_url={server.base_url}",
            f"{b}.concurrency=4", f"{b}.timeout_s=2", f"{b}.max_attempts=8",
            f"{b}.price_input_per_mtok=1", f"{b}.price_output_per_mtok=1000")]
        # the stages that cannot meet a fault are left out, to keep three builds short
        common = [f"teacher.cache_dir={tmp_path}/cache", "teacher.max_tokens=100", *remote,
                  "~recipe.stages.decontaminate", "~recipe.stages.near_dedup",
                  "~recipe.stages.token_lengths"]
        out = tmp_path / "out"

        capped = build(f"output.dir={out}", *common, "teacher.max_cost_usd=0.2")
        assert capped.returncode == 0, capped.stdout[-4000:]
        m = manifest(out)
        assert m["balanced"]
        held_back = sum(n for s in m["stages"] for k, n in s["removed"].items()
                        if k.endswith(":cost_cap"))
        assert held_back > 0 and "teacher.max_cost_usd reached" in capped.stdout
        pass1 = next(c for c in m["teacher"]["by_call"] if c["call"] == "pass 1")
        assert pass1["not_sent"] == held_back and pass1["requests"] == pass1["calls"] - held_back
        spent = sum(faults.answered.values()) * 0.007011
        assert spent <= 0.2 + 1e-9

        proc = start_build(f"output.dir={out}", *common, new_session=True)
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe flowing
        before = sum(faults.answered.values())
        deadline = time.monotonic() + 600
        while sum(faults.answered.values()) < before + 10 and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        faults.hold()  # what is in flight now stays unanswered
        # the kill comes once no request past the gate is still being answered, the answers
        # already sent are in the cache (the server counts them), and a request is held
        # unanswered (in flight)
        from pipeline.teachers.cache import stats

        while (faults.busy or not faults.held
               or stats(str(tmp_path / "cache"))["responses"] < sum(faults.answered.values())):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        _kill_session(proc)
        faults.release()
        assert proc.returncode == -signal.SIGKILL

        done = build(f"output.dir={out}", *common)
        assert done.returncode == 0, done.stdout[-4000:]
    assert faults.held > 0, "the build was killed with requests in flight"
    assert set(faults.answered.values()) == {1}, "no conversation was answered twice"
    assert all(faults.injected.values()), faults.injected
    m = manifest(out)
    assert m["balanced"] and not any(k.endswith(":cost_cap") for s in m["stages"]
                                     for k in s["removed"])


@pytest.mark.parametrize("sig, to_group, status, said", [
    (signal.SIGINT, True, 130, "interrupted"),
    (signal.SIGTERM, False, 143, "terminated (SIGTERM)"),
])
def test_ctrl_c_or_sigterm_stops_a_build_in_seconds_and_keeps_what_was_paid_for(
        tmp_path, sig, to_group, status, said):
    """SIGINT to the build's process group, as a terminal's Ctrl-C sends it, or SIGTERM to the
    build alone, as a scheduler's time limit or `kill` sends it, while requests are in flight:
    nothing more is sent, the answers on their way reach the cache, Ray is stopped, the previous
    output is untouched, and the build ends with one line on how to resume."""
    import psutil

    from fake_openai import FakeOpenAI

    def slow(body: dict, n: int):
        time.sleep(2.0)
        return _valid_trace(body, n)

    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text('{"previous": "build"}')
    with FakeOpenAI(slow) as server:
        # both passes on the fake: pass 1 and pass 2 are in flight together, in chains
        proc = start_build(f"output.dir={out}", f"teacher.cache_dir={tmp_path}/cache",
                           *(f"{key}{setting}" for key in ("teacher", "teacher2") for setting in (
                               "=openai", ".model=fake-judge", f".base_url={server.base_url}",
                               ".concurrency=4")),
                           "~recipe.stages.decontaminate", "~recipe.stages.near_dedup",
                           "~recipe.stages.token_lengths", new_session=True)
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
        deadline = time.monotonic() + 600
        while len(server.requests) < 4 and proc.poll() is None:  # four in flight
            assert time.monotonic() < deadline
            time.sleep(0.05)
        if to_group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        stopped = time.monotonic()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            _kill_session(proc)
            pytest.fail("the build went on after Ctrl-C")
        took = time.monotonic() - stopped
        sent = len(server.requests)
    time.sleep(0.5)
    text = "".join(lines)
    assert proc.returncode == status, text[-3000:]
    assert took < 40, f"{sig.name} took {took:.0f}s to stop the build"
    assert f"rubricforge: {said}" in text and "run the same command again" in text
    assert "Traceback" not in text
    assert (out / "manifest.json").read_text() == '{"previous": "build"}'
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    # every request sent was answered into the cache: a rerun pays for none of them again
    from pipeline.teachers.cache import stats

    assert stats(str(tmp_path / "cache"))["responses"] == sent >= 4
    left = psutil.wait_procs([p for p in psutil.process_iter() if _sid(p) == proc.pid],
                             timeout=30)[1]
    assert not left, f"processes of the build still running: {[p.name() for p in left]}"


def test_build_publish_repo_publishes_the_build_to_the_hub(runs):
    """`build publish.repo=...` (the shared build's first run: tests/conftest.py) with the real
    client against a loopback fake of the Hub API: every file of the build (shards and plots
    through LFS) lands in the repo."""
    from pipeline.output.publish import local_files

    out, stdout = runs["first"]
    endpoint, files = runs["hub"]
    assert f"{endpoint}/datasets/{PUBLISHED}" in stdout
    files = dict(files)
    assert files.pop(".gitattributes")
    assert files == {f: (out / f).read_bytes() for f in local_files(out)}
    assert any(f.startswith("sft/") for f in files) and any(f.startswith("rl/") for f in files)
