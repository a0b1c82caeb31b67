"""Benchmark decontamination: what overlaps, what does not, and how it is reported."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from pipeline.engine.config import ConfigError
from pipeline.engine.schema import ALIVE, REJECTED
from pipeline.output.manifest import Tally
from pipeline.plan import make_plan
from pipeline.rules.ngrams import NgramIndex, words
from pipeline.settings import load_config
from stages.benchmarks import SAMPLES_DIR, benchmark_prompts, prompt_text
from stages.decontaminate import Decontaminate, DecontaminateParams

from conftest import pair, run_stage

VOCAB = [f"w{i}" for i in range(500)]


def sentence(seed: int, n: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(n))


LONG = sentence(1, 60)
INDEX = NgramIndex.build(13, {
    "bench_a": [("a1", LONG), ("a2", "What is the capital of France?")],
    "bench_b": [("b1", sentence(2, 40)), ("b2", LONG)],
})


def test_verbatim_respaced_recased_and_repunctuated_prompts_match():
    for variant in (LONG, LONG.upper(), "  ".join(LONG.split()), LONG.replace(" ", "\n"),
                    LONG.replace(" ", ", ")):
        found = INDEX.matches(variant)
        assert [m.benchmark for m in found] == ["bench_a", "bench_b"], variant[:40]
        assert found[0].prompt_id == "a1" and found[0].shared == 60 - 13 + 1


def test_one_shared_13_word_span_in_a_longer_prompt_is_enough():
    inside = sentence(9, 30) + " " + " ".join(LONG.split()[20:33]) + " " + sentence(10, 30)
    found = INDEX.matches(inside)
    assert [(m.benchmark, m.shared) for m in found] == [("bench_a", 1), ("bench_b", 1)]
    assert not INDEX.matches(" ".join(LONG.split()[20:32])), "12 words are not a 13-gram"


def test_a_light_edit_of_a_long_prompt_still_matches():
    edited = LONG.split()
    edited[30] = "changed"
    assert INDEX.matches(" ".join(edited))[0].shared == 60 - 13 + 1 - 13


def test_short_benchmark_prompts_match_only_the_same_words():
    assert INDEX.matches("what is the capital of FRANCE")[0].whole
    assert INDEX.matches("What is the capital of France?")[0].prompt_id == "a2"
    assert not INDEX.matches("What is the capital of France? Explain the history in detail.")
    assert not INDEX.matches("the capital of France")


@pytest.mark.parametrize("n_words", [1, 12])
def test_a_benchmark_prompt_shorter_than_n_words_matches_its_own_words_in_a_batch(n_words):
    """Up to n-1 words (no n-gram to share): matched whole, at every length below n."""
    short = sentence(30 + n_words, n_words)
    index = NgramIndex.build(13, {"bench": [("s1", short), ("l1", LONG)]})
    texts = [sentence(40, 20), short.upper(), short + " and more"]
    assert [[m.prompt_id for m in ms] for ms in index.matches_all(texts)] == [[], ["s1"], []]


def test_clean_prompts_do_not_match():
    assert not INDEX.matches(sentence(3, 60))
    assert not INDEX.matches("")


def test_a_batch_finds_what_each_prompt_finds_and_no_n_gram_spans_two_prompts():
    span = LONG.split()[20:33]
    texts = [LONG, sentence(3, 60), "", "what is the capital of FRANCE", "the capital of France",
             sentence(9, 30) + " " + " ".join(span) + " " + sentence(10, 30),
             # a 13-gram cut across two neighbours in the batch is in neither
             sentence(11, 20) + " " + " ".join(span[:6]), " ".join(span[6:]) + " " + sentence(12, 9),
             "w1", *[sentence(100 + i, i) for i in range(15)]]
    assert INDEX.matches_all(texts) == [INDEX.matches(t) for t in texts]
    found = [bool(m) for m in INDEX.matches_all(texts)]
    assert found[:9] == [True, False, False, True, False, True, False, False, False]
    # the batch lookup itself names exactly these (the rest are never looked at one by one)
    assert INDEX._any_hit([words(t) for t in texts]).tolist() == found
    assert NgramIndex.build(13, {"empty": []}).matches_all(texts) == [[]] * len(texts)


@pytest.mark.parametrize("where", ["start", "end", "whole"])
def test_a_batch_finds_a_shared_span_at_either_end_of_a_prompt(where):
    """The first and last n-gram of each prompt are looked up too, in the batch as one by one
    (the stage uses the batch lookup)."""
    span = " ".join(LONG.split()[20:33])
    text = {"start": f"{span} {sentence(20, 25)}", "end": f"{sentence(21, 25)} {span}",
            "whole": span}[where]
    texts = [sentence(22, 30), text, sentence(23, 30)]
    assert [bool(m) for m in INDEX.matches_all(texts)] == [False, True, False]
    assert bool(INDEX.matches(text))


def test_index_reports_its_benchmarks():
    assert INDEX.stats["bench_a"] == {"prompts": 2, "shorter_than_n": 1, "ngrams": 48}
    # bench_b's copy of LONG adds no n-gram of its own there: an n-gram is stored once per benchmark
    assert INDEX.stats["bench_b"] == {"prompts": 2, "shorter_than_n": 0, "ngrams": 28 + 48}


def test_words_ignore_case_spacing_and_punctuation():
    assert words("Hello,   WORLD!\nIt's  ﬁne.") == ["hello", "world", "it", "s", "fine"]


PUBLISHED_COLUMNS = {
    "rewardbench": {"prompt", "chosen", "chosen_model", "rejected", "rejected_model", "subset", "id"},
    "rewardbench2": {"id", "prompt", "chosen", "rejected", "num_correct", "num_incorrect",
                     "total_completions", "models", "subset", "additional_metadata"},
    "rm_bench": {"id", "prompt", "chosen", "rejected", "domain"},
    "rmb": {"pair_uid", "conversation_input", "chosen", "reject", "category_path"},
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_COLUMNS))
def test_benchmark_samples_have_the_published_columns(cfg, name):
    path = SAMPLES_DIR / cfg.benchmarks[name].sample_file
    text = path.read_text(encoding="utf-8")
    rows = json.loads(text) if path.suffix == ".json" else [json.loads(x) for x in text.splitlines()]
    assert rows and all(set(r) == PUBLISHED_COLUMNS[name] for r in rows)
    prompts = list(benchmark_prompts(cfg.benchmarks[name], use_sample=True))
    assert len(prompts) == len(rows) and all(text.strip() for _, text in prompts)


def test_conversation_prompts_become_their_turns_text():
    turns = [{"role": "user", "content": "Hi", "language": "English"},
             {"role": "assistant", "content": "Hello"}]
    assert prompt_text(turns) == "Hi\nHello"
    assert prompt_text(["a", "b"]) == "a\nb" and prompt_text(None) == ""


@pytest.mark.ray
@pytest.mark.usefixtures("local_ray")
def test_stage_rejects_contaminated_rows_with_benchmark_and_prompt_id(cfg):
    rm_bench_code = dict(benchmark_prompts(cfg.benchmarks["rm_bench"], True))["0"]
    rows = [pair("a", 0, "why is the SKY blue?"),  # rewardbench id 30, verbatim but re-cased
            pair("a", 1, "Why is the sky blue? Please answer in detail for a child."),
            pair("b", 0, rm_bench_code.replace("\n", " ") + " Add type hints."),
            pair("b", 1, "A prompt that no benchmark has, about gardening in spring.")]
    got = run_stage(Decontaminate, DecontaminateParams(), rows)
    dirty = got[("a", 0)]
    assert (dirty["outcome"], dirty["reason"], dirty["decided_by"]) == (REJECTED, "contaminated",
                                                                        "decontaminate")
    assert dirty["contaminated_by"] == ["rewardbench"]
    assert dirty["detail"] == "rewardbench id 30: same prompt"
    assert got[("b", 0)]["contaminated_by"] == ["rm_bench"]
    assert "rm_bench id 0:" in got[("b", 0)]["detail"] and "13-grams" in got[("b", 0)]["detail"]
    assert got[("a", 1)]["outcome"] == ALIVE and got[("b", 1)]["outcome"] == ALIVE
    only_rmb = run_stage(Decontaminate, DecontaminateParams(benchmarks=["rmb"]), rows)
    assert all(r["outcome"] == ALIVE for r in only_rmb.values())


def test_manifest_counts_rows_per_source_and_benchmark():
    tally = Tally()
    base = {"outcome": REJECTED, "reason": "contaminated", "decided_by": "decontaminate"}
    tally.add([base | {"source": "s", "source_index": 0,
                       "contaminated_by": ["rewardbench", "rm_bench"]},
               base | {"source": "s", "source_index": 1, "contaminated_by": ["rewardbench"]},
               {"source": "t", "source_index": 0, "outcome": "", "reason": "", "decided_by": ""}])
    assert tally.contamination == Counter({("s", "rewardbench"): 2, ("s", "rm_bench"): 1})


def test_benchmark_settings_are_checked_before_any_work():
    with pytest.raises(ConfigError, match="'nope', which is not configured"):
        make_plan(load_config(["recipe.stages.decontaminate.benchmarks=[rewardbench,nope]"]))
    with pytest.raises(ConfigError, match="ngram must be >= 1"):
        make_plan(load_config(["recipe.stages.decontaminate.ngram=0"]))
    with pytest.raises(ConfigError, match=r"benchmarks.rmb has neither hub_id nor url and files: "
                       r"set benchmarks.rmb.data_files"):
        make_plan(load_config(["recipe.use_samples=false", "benchmarks.rmb.url=null",
                               "sources.skywork.data_files=stages/sources/samples/skywork.jsonl"]))
    with pytest.raises(ConfigError, match="matches no file") as err:
        make_plan(load_config(["recipe.use_samples=false", "benchmarks.rmb.data_files=/nowhere/*.json"]))
    assert "\n" not in str(err.value)


def test_a_benchmark_published_outside_the_hub_is_read_from_its_pinned_url(tmp_path, monkeypatch):
    """RMB comes from GitHub: `url` + `files` (paths with spaces, as RMB's) are fetched through
    `datasets` from a loopback server playing raw.githubusercontent.com; offline, one line says
    so and how to read a local copy."""
    import functools
    import http.server
    import threading

    import datasets
    from omegaconf import OmegaConf

    from pipeline.engine.reading import InputLoadError

    sample = json.loads((SAMPLES_DIR / "rmb.json").read_text())
    files = ["RMB_dataset/Pairwise_set/Harmlessness/S1.json",
             "RMB_dataset/Pairwise_set/Helpfulness/Open QA/General Explanation.json"]
    for i, name in enumerate(files):
        (tmp_path / "repo" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "repo" / name).write_text(json.dumps(sample[i::2]))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path / "repo")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = load_config(["recipe.use_samples=false"]).benchmarks.rmb
        assert cfg.url.startswith("https://raw.githubusercontent.com/Zhou-Zoey/") and len(cfg.files) == 49
        cfg = OmegaConf.merge(cfg, {"url": f"http://127.0.0.1:{server.server_port}",
                                    "files": files})
        with pytest.raises(InputLoadError, match="offline mode.*benchmarks.rmb.data_files") as err:
            list(benchmark_prompts(cfg, use_sample=False))
        assert "\n" not in str(err.value)
        monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
        monkeypatch.setattr(datasets.config, "DOWNLOADED_DATASETS_PATH", tmp_path / "downloads")
        got = dict(benchmark_prompts(cfg, use_sample=False))
    finally:
        server.shutdown()
    assert got == {r["pair_uid"]: r["conversation_input"][0]["content"] for r in sample}
