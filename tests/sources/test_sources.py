"""Each source maps its published schema onto the canonical pair, quarantining what it can't."""

from __future__ import annotations

import json
from collections import Counter

import datasets
import pytest

from pipeline.engine.reading import InputLoadError
from pipeline.engine.schema import ALIVE, CANONICAL_COLUMNS, QUARANTINED, REJECTED
from pipeline.rules.keys import pair_id
from pipeline.settings import load_config
from stages.sources import get_source, registry
from stages.sources.base import SAMPLES_DIR, Source

# Every source module, found the way the build finds them: a new source is tested without
# editing this file.
ALL = sorted(registry())
DEFAULT = tuple(load_config([]).sources)


def config_with(name):
    return load_config([] if name in DEFAULT else [f"+source@sources.{name}={name}"])


def mapped(cfg, name):
    if name not in cfg.sources:
        cfg = load_config([f"+source@sources.{name}={name}"])
    source = get_source(name)
    scfg = cfg.sources[name]
    return source.map_batch(source.raw_table(scfg, use_sample=True), scfg).to_pylist()


def test_sources_are_discovered_by_module_name():
    assert {"skywork", "code_preference_pairs", "math_step_dpo"} <= set(registry())


@pytest.mark.parametrize("name", ALL)
def test_sample_is_schema_exact_and_sized(name):
    cfg = config_with(name)
    source = get_source(name)
    sample = SAMPLES_DIR / cfg.sources[name].sample_file
    # the file's own types, inferred without the declared features, are the published schema
    inferred = datasets.load_dataset("json", data_files=str(sample), split="train")
    assert inferred.features == source.features
    assert 30 <= len(inferred) <= 60
    lines = sample.read_text().splitlines()
    assert all(set(json.loads(line)) == set(source.features) for line in lines)


@pytest.mark.parametrize("name", ALL)
def test_every_row_maps_to_its_pairs(name):
    """Each raw row gives canonical rows numbered 0..k-1 (k = 1 unless it holds several pairs)."""
    cfg = config_with(name)
    rows = mapped(cfg, name)
    n = len(get_source(name).load(cfg.sources[name], use_sample=True))
    per_row = {}
    for r in rows:
        per_row.setdefault(r["source_index"], []).append(r["pair_index"])
    assert sorted(per_row) == list(range(n))
    assert all(v == list(range(len(v))) for v in per_row.values())
    if type(get_source(name)).to_pairs is Source.to_pairs:  # one pair per row
        assert len(rows) == n
    for r in rows:
        assert set(r) == set(CANONICAL_COLUMNS)
        assert r["source"] == name and r["license"] == cfg.sources[name].license
        if r["outcome"] == ALIVE:
            assert r["pair_id"] == pair_id(r["prompt"], r["chosen"], r["rejected"])
            assert [m["role"] for m in r["chosen"] + r["rejected"]] == ["assistant", "assistant"]
        else:
            assert r["reason"], r


def test_skywork_mapping(cfg):
    rows = mapped(cfg, "skywork")
    multi = [r for r in rows if r["outcome"] == ALIVE and len(r["prompt"]) > 1]
    assert multi, "multi-turn pairs keep their whole conversation as the prompt"
    assert all(len(r["chosen"]) == 1 and len(r["rejected"]) == 1 for r in multi)
    excluded = [r for r in rows if r["reason"] == "excluded_subset"]
    assert excluded and all(r["detail"] == "magpie_ultra" and r["outcome"] == REJECTED
                            for r in excluded)
    assert {r["domain"] for r in rows if r["subset"] == "wildguard"} == {"safety"}
    reasons = Counter(r["reason"] for r in rows if r["outcome"] == QUARANTINED)
    assert reasons == {"missing_field": 2, "last_turn_not_assistant": 1, "empty_field": 1,
                       "prompt_mismatch": 1}


def test_code_pairs_mapping(cfg):
    rows = mapped(cfg, "code_preference_pairs")
    ok = [r for r in rows if r["outcome"] == ALIVE]
    assert all(r["domain"] == "code" for r in ok)
    raw = datasets.load_dataset("json", data_files=str(SAMPLES_DIR / "code_preference_pairs.jsonl"),
                                split="train")
    first = next(r for r in ok if r["source_index"] == 0)
    assert first["prompt"][0]["content"] == raw[0]["input"]
    assert first["chosen"][0]["content"] == raw[0]["accepted"]
    assert first["rejected"][0]["content"] == raw[0]["rejected"]
    quarantined = [r for r in rows if r["outcome"] == QUARANTINED]
    assert {(r["reason"], r["detail"]) for r in quarantined} == {
        ("missing_field", "input"), ("missing_field", "rejected")}
    assert all(r["raw"] for r in quarantined), "quarantine keeps the raw row to inspect"


def test_math_answer_is_steps_plus_full_continuation(cfg):
    rows = mapped(cfg, "math_step_dpo")
    raw = datasets.load_dataset("json", data_files=str(SAMPLES_DIR / "math_step_dpo.jsonl"),
                                split="train")
    r = next(r for r in rows if r["source_index"] == 0)
    assert r["chosen"][0]["content"] == raw[0]["initial_reason_steps"] + raw[0]["full_chosen"]
    assert r["rejected"][0]["content"] == raw[0]["initial_reason_steps"] + raw[0]["full_rejected"]
    assert r["subset"] == raw[0]["dataset"] and r["domain"] == "math"


def test_seeded_limit_takes_the_same_rows_as_datasets_shuffle():
    cfg = load_config(["sources.code_preference_pairs.limit=8",
                       "sources.code_preference_pairs.shuffle_seed=42"])
    source = get_source("code_preference_pairs")
    scfg = cfg.sources["code_preference_pairs"]
    rows = source.map_batch(source.raw_table(scfg, use_sample=True), scfg).to_pylist()
    ds = source.load(scfg, use_sample=True)
    expected = ds.add_column("i", list(range(len(ds)))).shuffle(seed=42)["i"][:8]
    taken = sorted(r["source_index"] for r in rows if r["reason"] != "over_limit")
    assert taken == sorted(expected)
    assert sum(r["reason"] == "over_limit" for r in rows) == len(ds) - 8


def test_hub_id_offline_fails_with_one_clear_line(cfg):
    with pytest.raises(InputLoadError) as err:
        get_source("skywork").load(cfg.sources["skywork"], use_sample=False)
    message = str(err.value)
    assert "\n" not in message
    assert "sources.skywork" in message and "data_files" in message


def test_helpsteer3_mapping(cfg):
    rows = mapped(cfg, "helpsteer3")
    raw = datasets.load_dataset("json", data_files=str(SAMPLES_DIR / "helpsteer3.jsonl"),
                                split="train")
    for r in rows:
        src = raw[r["source_index"]]
        if r["outcome"] != ALIVE:
            continue
        better = src["response1"] if src["overall_preference"] < 0 else src["response2"]
        worse = src["response2"] if src["overall_preference"] < 0 else src["response1"]
        assert r["chosen"][0]["content"] == better and r["rejected"][0]["content"] == worse
        assert r["prompt"] == src["context"]
        assert r["subset"] == f"{src['domain']}/{src['language']}"
    ties = [r for r in rows if r["reason"] == "tie"]
    assert len(ties) == 2 and all(r["outcome"] == REJECTED for r in ties)
    assert Counter(r["reason"] for r in rows if r["outcome"] == QUARANTINED) == {"missing_field": 2}
    assert {r["domain"] for r in rows if r["outcome"] == ALIVE} == {"chat", "code", "stem"}


def ultrafeedback_rows(*overrides):
    from pipeline.plan import make_plan

    cfg = load_config(["+source@sources.ultrafeedback=ultrafeedback", *overrides])
    source, scfg = next((s, c) for s, c in make_plan(cfg).sources if s.name == "ultrafeedback")
    return source.map_batch(source.raw_table(scfg, use_sample=True), scfg).to_pylist()


def test_ultrafeedback_gives_every_pair_of_scores_a_margin_apart():
    rows = ultrafeedback_rows()
    raw = datasets.load_dataset("json", data_files=str(SAMPLES_DIR / "ultrafeedback.jsonl"),
                                split="train")
    first = [r for r in rows if r["source_index"] == 0]
    # four completions: six pairs in the completions' order, 0-3 (9 vs 8.5) a tie
    assert [r["pair_index"] for r in first] == list(range(6))
    assert [r["reason"] for r in first] == ["", "", "tie", "", "", ""]
    completions = raw[0]["completions"]
    best, worst = completions[0]["response"], completions[1]["response"]
    assert (first[0]["chosen"][0]["content"], first[0]["rejected"][0]["content"]) == (best, worst)
    # 1-2: the lower-indexed completion scored lower, so it is the rejected one
    assert first[3]["chosen"][0]["content"] == completions[2]["response"]
    assert first[3]["prompt"] == [{"role": "user", "content": raw[0]["instruction"]}]
    # ids are content hashes: only pairs with the same texts share one (the sample's 7 x 8 row
    # has two identical completions, so two identical pairs, left for exact_dedup)
    contents = {}
    for r in rows:
        contents.setdefault(r["pair_id"], set()).add(json.dumps([r["prompt"], r["chosen"],
                                                                 r["rejected"]]))
    assert all(len(c) == 1 for c in contents.values())
    assert len(contents) == len(rows) - 1
    by_reason = Counter(r["reason"] for r in rows if r["outcome"] != ALIVE)
    assert by_reason["too_few_completions"] == 1 and by_reason["missing_field"] == 3
    assert all(r["subset"] == "truthful_qa" for r in rows if r["reason"] == "excluded_subset")
    # a completion without a score costs only its own pairs
    unscored = [r for r in rows if r["detail"] == "completions[2].overall_score"]
    assert [(r["pair_index"], r["outcome"]) for r in unscored] == [(1, QUARANTINED),
                                                                   (2, QUARANTINED)]
    assert next(r for r in rows if r["source_index"] == unscored[0]["source_index"]
                and r["pair_index"] == 0)["outcome"] == ALIVE
    # a lower margin turns the 0.5-apart ties into pairs
    ties = sum(r["reason"] == "tie" for r in rows)
    assert sum(r["reason"] == "tie" for r in ultrafeedback_rows(
        "sources.ultrafeedback.params.margin=0.5")) == ties - 25


def test_a_source_setting_is_checked_before_any_work():
    from pipeline.engine.config import ConfigError

    with pytest.raises(ConfigError, match=r"sources\.ultrafeedback\.params\.margin must be > 0"):
        ultrafeedback_rows("sources.ultrafeedback.params.margin=0")
    with pytest.raises(ConfigError, match="settings of 'ultrafeedback': margin"):
        ultrafeedback_rows("+sources.ultrafeedback.params.margn=2")


def test_tulu3_mapping(cfg):
    rows = mapped(cfg, "tulu3_preference")
    raw = datasets.load_dataset("json", data_files=str(SAMPLES_DIR / "tulu3_preference.jsonl"),
                                split="train")
    ok = [r for r in rows if r["outcome"] == ALIVE]
    for r in ok:
        src = raw[r["source_index"]]
        assert r["prompt"] + r["chosen"] == src["chosen"]
        assert r["prompt"] + r["rejected"] == src["rejected"]
        assert r["subset"] == src["source"] and r["domain"] == "chat"
    assert any(len(r["prompt"]) > 1 for r in ok), "multi-turn prompts keep every turn"
    assert Counter(r["reason"] for r in rows if r["outcome"] == QUARANTINED) == {
        "missing_field": 2, "prompt_mismatch": 1, "last_turn_not_assistant": 1}


def test_every_source_is_complete():
    """A source is one module, one YAML, one card and a sample: `rubricforge sources` checks."""
    from pipeline.sources_table import sources_table

    table = sources_table()
    for name in registry():
        line = next(ln for ln in table.splitlines() if ln.startswith(name + " "))
        assert line.rstrip().endswith("ok"), line


def test_sources_runs_the_checks_a_build_runs(tmp_path, monkeypatch):
    """A YAML whose `name:` is misspelt, or that sets both data_dir and data_files, is not
    `ok`: `rubricforge sources` says what the build would say, before any build."""
    import shutil

    import pipeline.sources_table as table_module

    shutil.copytree(table_module.CONF_DIR / "source", tmp_path / "source")
    yaml = tmp_path / "source" / "skywork.yaml"
    yaml.write_text(yaml.read_text().replace("name: skywork", "name: skywrok"))
    hs3 = tmp_path / "source" / "helpsteer3.yaml"
    hs3.write_text(hs3.read_text().replace("data_dir: null", "data_dir: preference")
                   .replace("data_files: null", f"data_files: {SAMPLES_DIR}/helpsteer3.jsonl"))
    monkeypatch.setattr(table_module, "CONF_DIR", tmp_path)
    lines = {ln.split()[0]: ln for ln in table_module.sources_table().splitlines() if ln.strip()}
    assert lines["skywork"].endswith("sources.skywork.name is 'skywrok', expected 'skywork' "
                                     "(the source's module name)")
    assert "sources.helpsteer3.data_dir=preference picks a folder" in lines["helpsteer3"]
    assert lines["math_step_dpo"].endswith("ok")


def read_files(files: str, name: str = "skywork"):
    plain = load_config([])
    add = [] if name in plain.sources else [f"+source@sources.{name}={name}"]
    cfg = load_config([*add, f"sources.{name}.data_files='{files}'"])
    source, scfg = get_source(name), cfg.sources[name]
    return source.map_batch(source.raw_table(scfg, use_sample=True), scfg).to_pylist()


def test_an_unreadable_file_is_named_with_its_real_cause_and_an_empty_one_is_said(
        tmp_path, caplog):
    """Not "An error occurred while generating the dataset. Download it first": the file and
    the parser's cause, in one line, before any work; an empty file in a glob is reported."""
    sample = datasets.load_dataset("json", data_files=str(SAMPLES_DIR / "skywork.jsonl"),
                                   split="train")
    sample.to_parquet(str(tmp_path / "a.parquet"))
    (tmp_path / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    (tmp_path / "c.parquet").write_bytes(b"")
    with pytest.raises(InputLoadError) as err:
        read_files(f"{tmp_path}/[abc].parquet")
    message = str(err.value)
    assert f"cannot read {tmp_path}/b.parquet" in message and "Parquet" in message
    assert "\n" not in message and "Download it first" not in message
    assert f"{tmp_path}/c.parquet is empty" in caplog.text
    assert len(read_files(f"{tmp_path}/[ac].parquet")) == len(sample)
    with pytest.raises(InputLoadError, match="every file of data_files=.* is empty"):
        read_files(f"{tmp_path}/c.parquet")


def test_one_bad_row_costs_that_row_never_its_file_and_nothing_is_coerced(tmp_path, caplog):
    """Each broken row of a JSON Lines file is quarantined with its file, line and cause (a
    number where text belongs, a string where a list is, an unknown field inside a message, a
    cut line, Latin-1, a lone surrogate); the good rows around them are read as they are, not JSON-encoded. A
    top-level field the source does not read is left out and said, its row kept."""
    good = (SAMPLES_DIR / "skywork.jsonl").read_bytes().splitlines(keepends=True)
    turn = b'[{"role": "user", "content": "q"}, {"role": "assistant", "content": "%s"}]'
    broken = [
        b'{"chosen": [{"role": "user", "content": 42}], "rejected": [], "source": "x"}\n',
        b'{"chosen": "a string", "rejected": [], "source": "x"}\n',
        b'{"chosen": [{"role": "user", "content": "q", "extra": 1}], "rejected": [], '
        b'"source": "x"}\n',
        b'{"chosen": [{"role": "us\n',
        b'{"chosen": ' + turn % b"caf\xe9" + b', "rejected": ' + turn % b"b" + b', "source": "x"}\n',
        b'{"chosen": ' + turn % b"half \\ud800 a pair" + b', "rejected": ' + turn % b"b"
        + b', "source": "x"}\n',
    ]
    (tmp_path / "mixed.jsonl").write_bytes(b"".join(good[:3] + broken + good[3:]))
    rows = read_files(f"{tmp_path}/mixed.jsonl")
    where = f"{tmp_path}/mixed.jsonl"
    bad = [(r["reason"], r["detail"]) for r in rows[3:3 + len(broken)]]
    assert [reason for reason, _ in bad] == ["bad_type", "bad_type", "bad_type", "bad_json",
                                             "bad_encoding", "bad_encoding"]
    assert bad[0][1] == f"{where}:4: chosen[0].content is int, expected string"
    assert bad[1][1] == f"{where}:5: chosen is str, expected a list"
    assert bad[2][1] == f"{where}:6: chosen[0] has an unexpected field 'extra'"
    assert bad[3][1].startswith(f"{where}:7: ") and "utf-8" in bad[4][1]
    # a lone surrogate (valid JSON, no character) is said, not turned into "" (empty_field)
    assert bad[5][1] == f"{where}:9: chosen[1].content holds a lone surrogate \\ud800, which is not text"
    assert all(r["outcome"] == QUARANTINED for r in rows[3:3 + len(broken)])
    # a per-domain file with a column of its own: read, the column left out and said
    extra = [json.dumps(json.loads(line) | {"domain_notes": "x"}) for line in good]
    (tmp_path / "extra.jsonl").write_text("\n".join(extra) + "\n")
    with_extra = read_files(f"{tmp_path}/extra.jsonl")
    assert [r["reason"] for r in with_extra] == [r["reason"] for r in mapped(load_config([]),
                                                                             "skywork")]
    assert "domain_notes (38 rows)" in caplog.text
    sample = mapped(load_config([]), "skywork")
    kept = rows[:3] + rows[3 + len(broken):]
    strip = ("source_index",)  # the indices moved; the content did not
    assert [{k: v for k, v in r.items() if k not in strip} for r in kept] == [
        {k: v for k, v in r.items() if k not in strip} for r in sample]


def test_invalid_utf8_inside_a_row_quarantines_that_row_only(tmp_path):
    """Arrow reads a JSON string holding invalid UTF-8 but cannot turn it into text: the row is
    quarantined as bad_encoding, every other row of the file is mapped as before."""
    good = (SAMPLES_DIR / "skywork.jsonl").read_bytes()
    bad = (b'{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": '
           b'"caf\xe9"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", '
           b'"content": "b"}], "source": "x"}\n')
    (tmp_path / "mixed.jsonl").write_bytes(good + bad)
    cfg = load_config([f"sources.skywork.data_files={tmp_path}/mixed.jsonl"])
    rows = mapped(cfg, "skywork")
    n = len(good.splitlines())
    assert (rows[n]["reason"], rows[n]["outcome"], rows[n]["source_index"]) == (
        "bad_encoding", QUARANTINED, n)
    assert "utf-8" in rows[n]["detail"]
    assert rows[:n] == mapped(load_config([]), "skywork")


def test_a_number_where_text_belongs_is_bad_type_and_the_other_rows_stay_text(tmp_path):
    """`datasets` would JSON-encode the whole column for every row (`'"What is 2+2?"'`);
    here that one row is quarantined and every other row reads as written."""
    lines = (SAMPLES_DIR / "code_preference_pairs.jsonl").read_text().splitlines()
    row = json.loads(lines[0]) | {"input": 42}
    (tmp_path / "code.jsonl").write_text("\n".join([lines[0], json.dumps(row), *lines[1:]]) + "\n")
    rows = read_files(f"{tmp_path}/code.jsonl", "code_preference_pairs")
    assert (rows[1]["reason"], rows[1]["detail"]) == (
        "bad_type", f"{tmp_path}/code.jsonl:2: input is int, expected string")
    sample = mapped(load_config([]), "code_preference_pairs")
    assert rows[0]["prompt"] == sample[0]["prompt"]
    assert [r["prompt"] for r in rows[2:]] == [r["prompt"] for r in sample[1:]]


def test_a_fraction_in_an_integer_field_is_bad_type_never_rounded(tmp_path):
    """HelpSteer3's `overall_preference` is an integer: `datasets` would store 1.5 as 1 (a
    silently altered label), so the row-by-row reader quarantines it and keeps the others."""
    lines = (SAMPLES_DIR / "helpsteer3.jsonl").read_text().splitlines()
    bad = [json.loads(lines[1]) | {"overall_preference": v} for v in (1.5, -2.5, "2", True)]
    (tmp_path / "hs3.jsonl").write_text("\n".join([lines[0], *map(json.dumps, bad),
                                                   *lines[1:]]) + "\n")
    rows = read_files(f"{tmp_path}/hs3.jsonl", "helpsteer3")
    where = f"{tmp_path}/hs3.jsonl"
    assert [(r["reason"], r["detail"]) for r in rows[1:5]] == [
        ("bad_type", f"{where}:{i}: overall_preference is {t}, expected int64")
        for i, t in ((2, "float"), (3, "float"), (4, "str"), (5, "bool"))]
    sample = mapped(load_config([]), "helpsteer3")
    assert [r["reason"] for r in rows[:1] + rows[5:]] == [r["reason"] for r in sample]


def compress(data: bytes, kind: str) -> bytes:
    import bz2
    import gzip
    import lzma

    import zstandard

    return {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress,
            "zst": zstandard.ZstdCompressor().compress}[kind](data)


@pytest.mark.parametrize("kind", ["gz", "zst", "bz2", "xz"])
def test_a_compressed_file_is_read_as_its_format_and_one_bad_row_costs_one_row(tmp_path, kind):
    """`x.jsonl.gz` is JSON Lines, not Parquet; read whole by `datasets`, and row by row when
    one row breaks the schema: decompressed, so the bad row is quarantined and no other."""
    good = (SAMPLES_DIR / "skywork.jsonl").read_bytes()
    (tmp_path / f"good.jsonl.{kind}").write_bytes(compress(good, kind))
    sample = mapped(load_config([]), "skywork")
    assert read_files(f"{tmp_path}/good.jsonl.{kind}") == sample
    lines = good.splitlines(keepends=True)
    bad = b'{"chosen": 42, "rejected": [], "source": "x"}\n'
    (tmp_path / f"one_bad.jsonl.{kind}").write_bytes(compress(b"".join([*lines[:2], bad,
                                                                       *lines[2:]]), kind))
    rows = read_files(f"{tmp_path}/one_bad.jsonl.{kind}")
    assert len(rows) == len(sample) + 1
    assert [r["reason"] for r in rows if r["outcome"] == QUARANTINED and r["source_index"] == 2] \
        == ["bad_type"]
    assert rows[2]["detail"] == f"{tmp_path}/one_bad.jsonl.{kind}:3: chosen is int, expected a list"
    strip = ("source_index",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in rows[:2] + rows[3:]] == [
        {k: v for k, v in r.items() if k not in strip} for r in sample]


def test_a_broken_archive_and_mixed_formats_are_one_line_each(tmp_path):
    (tmp_path / "cut.jsonl.gz").write_bytes(compress(b'{"chosen": 1}\n' * 50, "gz")[:30])
    with pytest.raises(InputLoadError, match=f"cannot .*{tmp_path}/cut.jsonl.gz") as err:
        read_files(f"{tmp_path}/cut.jsonl.gz")
    assert "\n" not in str(err.value)
    assert str(err.value).count("cut.jsonl.gz") == 1, "said once, not once per reader"
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.jsonl.gz").write_bytes(compress(b"{}\n", "gz"))
    (tmp_path / "mixed" / "b.parquet").write_bytes(b"PAR1")
    from pipeline.engine.config import ConfigError
    from pipeline.plan import make_plan

    with pytest.raises(ConfigError, match=r"mixes formats: .*a.jsonl.gz \(json\), .*b.parquet "
                                          r"\(parquet\); narrow the glob"):
        make_plan(load_config([f"sources.skywork.data_files={tmp_path}/mixed/*"]))


def test_a_transcript_splits_at_labels_after_a_blank_line_and_reports_the_others():
    from stages.sources.base import BadRow, transcript

    t = transcript("\n\nHuman: Hi.\nAssistant: is not a turn here\n\nAssistant: Hello! Human: "
                   "and you?\n\nHuman: Bye.")
    assert [(m["role"], m["content"]) for m in t.turns] == [
        ("user", "Hi.\nAssistant: is not a turn here"), ("assistant", "Hello! Human: and you?"),
        ("user", "Bye.")]
    assert t.inline == ["turn 0: 'Assistant:' inside a Human turn",
                        "turn 1: 'Human:' inside a Assistant turn"]
    with pytest.raises(BadRow) as err:
        t.strict()
    assert err.value.reason == "inline_marker"
    assert transcript("Human: one\n\nAssistant: two").strict() == [
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}]
    for bad in ("no labels at all", "Intro.\n\nHuman: q"):
        with pytest.raises(BadRow, match="bad_transcript"):
            transcript(bad)


def test_merged_turns_joins_consecutive_turns_of_one_role():
    from stages.sources.base import merged_turns

    msgs = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"}]
    assert merged_turns(msgs) == [{"role": "user", "content": "a\n\nb"},
                                  {"role": "assistant", "content": "c"}]
    assert msgs[0]["content"] == "a", "the input is read, never changed"


def test_hh_rlhf_mapping():
    """Transcripts become turns; the shared turns are the prompt; the malformed sample rows
    land in quarantine for their own reasons (validate takes the role order and empty text)."""
    from stages.validate import problem

    rows = mapped(config_with("hh_rlhf"), "hh_rlhf")
    raw = [json.loads(line) for line in (SAMPLES_DIR / "hh_rlhf.jsonl").read_text().splitlines()]
    ok = [r for r in rows if r["outcome"] == ALIVE and not problem(r, 32000)]
    for r in ok:
        src = raw[r["source_index"]]
        assert src["chosen"].endswith(r["chosen"][0]["content"])
        assert src["rejected"].endswith(r["rejected"][0]["content"])
        assert [m["role"] for m in r["prompt"]][::2] == ["user"] * ((len(r["prompt"]) + 1) // 2)
    assert any(len(r["prompt"]) > 1 for r in ok), "multi-turn prompts keep every turn"
    assert Counter(r["reason"] for r in rows if r["outcome"] == QUARANTINED) == {
        "prompt_mismatch": 1, "inline_marker": 1, "bad_transcript": 1}
    assert Counter(problem(r, 32000)[0] for r in rows
                   if r["outcome"] == ALIVE and problem(r, 32000)) == {"bad_role": 1,
                                                                         "empty_field": 1}


def test_hh_rlhf_as_published_a_gzipped_folder_with_one_bad_row_costs_that_row(tmp_path):
    """The shape of the real files: `harmless-base/test.jsonl.gz` in a copy of the Hub
    repository, read as the Hub is (hub_id a local folder, data_dir the part), or by path;
    one row with a number where the transcript belongs is quarantined, and only it."""
    lines = (SAMPLES_DIR / "hh_rlhf.jsonl").read_bytes().splitlines(keepends=True)
    bad = b'{"chosen": 42, "rejected": "\\n\\nHuman: q\\n\\nAssistant: a"}\n'
    part = tmp_path / "hh-rlhf" / "harmless-base"
    part.mkdir(parents=True)
    (part / "test.jsonl.gz").write_bytes(compress(b"".join([*lines[:5], bad, *lines[5:]]), "gz"))
    (part / "train.jsonl.gz").write_bytes(compress(b"".join(lines[:3]), "gz"))
    (tmp_path / "hh-rlhf" / "helpful-base").mkdir()
    (tmp_path / "hh-rlhf" / "helpful-base" / "test.jsonl.gz").write_bytes(
        compress(b"".join(lines[:7]), "gz"))
    by_path = read_files(f"{part}/test.jsonl.gz", "hh_rlhf")
    sample = mapped(config_with("hh_rlhf"), "hh_rlhf")
    assert len(by_path) == len(sample) + 1
    assert [(r["source_index"], r["reason"]) for r in by_path if r["reason"] == "bad_type"] == [
        (5, "bad_type")]
    assert by_path[5]["detail"] == f"{part}/test.jsonl.gz:6: chosen is int, expected string"
    # the Hub's way: the repository's folder and split, here a local copy of it
    cfg = load_config(["+source@sources.hh_rlhf=hh_rlhf",
                       f"sources.hh_rlhf.hub_id={tmp_path}/hh-rlhf",
                       "sources.hh_rlhf.data_dir=helpful-base", "sources.hh_rlhf.split=test"])
    source = get_source("hh_rlhf")
    ds, problems, read = source.read(cfg.sources.hh_rlhf, use_sample=False)
    assert len(ds) == 7 and not problems
    assert read == {"kind": "hub", "hub_id": f"{tmp_path}/hh-rlhf", "revision": "main",
                    "commit": None, "config": None, "data_dir": "helpful-base", "split": "test",
                    "files": [{"path": f"{tmp_path}/hh-rlhf/helpful-base/test.jsonl.gz",
                               "bytes": (tmp_path / "hh-rlhf/helpful-base/test.jsonl.gz")
                               .stat().st_size,
                               "sha256": sha256(tmp_path / "hh-rlhf/helpful-base/test.jsonl.gz")}]}


def sha256(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_what_was_read_names_files_with_checksums_and_hub_commits(tmp_path):
    from pipeline.engine.provenance import hub_read

    good = (SAMPLES_DIR / "skywork.jsonl").read_bytes()
    (tmp_path / "a.jsonl").write_bytes(good[: len(good) // 2].rsplit(b"\n", 1)[0] + b"\n")
    (tmp_path / "b.jsonl.gz").write_bytes(compress(good, "gz"))
    cfg = load_config([f"sources.skywork.data_files={tmp_path}/*.jsonl*"])
    _, _, read = get_source("skywork").read(cfg.sources.skywork, use_sample=False)
    assert read == {"kind": "files", "data_files": f"{tmp_path}/*.jsonl*", "files": [
        {"path": f"{tmp_path}/{n}", "bytes": (tmp_path / n).stat().st_size,
         "sha256": sha256(tmp_path / n)} for n in ("a.jsonl", "b.jsonl.gz")]}
    _, _, sample = get_source("skywork").read(load_config([]).sources.skywork, use_sample=True)
    assert sample["sample"] and sample["files"][0]["path"] == "skywork.jsonl"
    # what `datasets` resolves on the Hub: every file at the commit the revision named
    hub = load_config(["+source@sources.hh_rlhf=hh_rlhf", "sources.hh_rlhf.revision=v1",
                       "sources.hh_rlhf.data_dir=harmless-base"]).sources.hh_rlhf
    sha = "09be8c5bbc57cb3887f3a9732ad6aa7ec602a1fa"
    assert hub_read(hub, "harmless-base",
                    [f"hf://datasets/Anthropic/hh-rlhf@{sha}/harmless-base/train.jsonl.gz"]) == {
        "kind": "hub", "hub_id": "Anthropic/hh-rlhf", "revision": "v1", "commit": sha,
        "config": None, "data_dir": "harmless-base", "split": "train",
        "files": ["harmless-base/train.jsonl.gz"]}
