"""Token lengths as the trainer counts them, the caps, and the counts kept between builds."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.engine.config import ConfigError
from pipeline.engine.schema import ALIVE, REJECTED, conform
from pipeline.engine.stage import BuildContext
from pipeline.output.formats import to_sft
from pipeline.plan import make_plan
from pipeline.settings import load_config

from conftest import chatml
from judged import COLUMNS, row, table, trace


def test_token_lengths_count_what_the_trainer_sees_and_cap_it(cfg):
    from stages.token_lengths import TokenLengths, TokenLengthsParams

    rows = table([row(0, "model_a", trace=trace("A")), row(1, "model_b", split="rl")])
    stage = TokenLengths(TokenLengthsParams(), BuildContext(cfg))
    stage.preflight()
    counted = stage.process(rows).to_pylist()
    tok = stage._tokenizer()
    sft_chat = [*counted[0]["context_messages"], {"role": "assistant", "content": trace("A")}]
    # counted against SmolLM2's ChatML written out by hand, not the template the stage renders
    assert counted[0]["num_tokens"] == len(tok.encode(chatml(sft_chat, False),
                                                      add_special_tokens=False))
    assert 0 < counted[1]["num_tokens"] < counted[0]["num_tokens"]
    assert counted[1]["num_tokens"] == len(tok.encode(
        chatml(counted[1]["context_messages"], True), add_special_tokens=False))
    assert all(r["outcome"] == ALIVE for r in counted)
    # each answer alone, as plain text: the length cue's units
    for r in counted:
        assert (r["chosen_tokens"], r["rejected_tokens"]) == tuple(
            len(tok.encode(r[side][0]["content"], add_special_tokens=False))
            for side in ("chosen", "rejected"))
    capped = TokenLengths(TokenLengthsParams(max_sft_tokens=50, max_rl_prompt_tokens=None),
                          BuildContext(cfg)).process(rows).to_pylist()
    assert (capped[0]["outcome"], capped[0]["reason"]) == (REJECTED, "over_token_limit")
    assert capped[0]["detail"] == f"SFT chat: {counted[0]['num_tokens']} tokens > 50"
    assert capped[1]["outcome"] == ALIVE, "no RL cap: counted only"
    # a cap is the most a row may have: a row of exactly `cap` tokens fits, one more does not
    for sft_cap, rl_cap, fits in ((counted[0]["num_tokens"], counted[1]["num_tokens"], True),
                                  (counted[0]["num_tokens"] - 1, counted[1]["num_tokens"] - 1,
                                   False)):
        at = TokenLengths(TokenLengthsParams(max_sft_tokens=sft_cap, max_rl_prompt_tokens=rl_cap),
                          BuildContext(cfg)).process(rows).to_pylist()
        assert [r["outcome"] for r in at] == [ALIVE if fits else REJECTED] * 2, (sft_cap, at)


def test_a_pair_kept_in_both_orders_must_fit_in_both(cfg):
    from stages.token_lengths import TokenLengths, TokenLengthsParams

    base = row(0, "model_a", trace=trace("A"))
    swapped = [*row(0, "model_b")["context_messages"],
               {"role": "assistant", "content": trace("B", "Canberra, not Sydney. " * 40)}]
    swap = {"teacher_model": "judge-1", "verdict": "B", "consistent": True, "prompt_tokens": 1,
            "completion_tokens": 2}
    rows = conform(pa.Table.from_pylist([base | {"swap": swap, "swap_messages": swapped}]),
                   (*COLUMNS, "swap", "swap_messages"))
    counted = TokenLengths(TokenLengthsParams(), BuildContext(cfg)).process(rows).to_pylist()[0]
    assert counted["swap_num_tokens"] > counted["num_tokens"] + 150
    cap = counted["num_tokens"] + 100
    capped = TokenLengths(TokenLengthsParams(max_sft_tokens=cap), BuildContext(cfg)).process(
        rows).to_pylist()[0]
    assert (capped["outcome"], capped["reason"]) == (REJECTED, "over_token_limit")
    assert capped["detail"] == (f"SFT chat with A/B swapped: {counted['swap_num_tokens']} "
                                f"tokens > {cap}")
    assert to_sft([counted])["num_tokens"].to_pylist() == [counted["num_tokens"],
                                                           counted["swap_num_tokens"]]


def test_a_tokenizer_that_cannot_be_loaded_stops_the_build_first():
    with pytest.raises(ConfigError, match="token_lengths.tokenizer=/no/such/tokenizer") as err:
        make_plan(load_config(["recipe.stages.token_lengths.tokenizer=/no/such/tokenizer"]))
    assert "\n" not in str(err.value)


def test_token_counts_are_read_back_by_chat_without_the_tokenizer(tmp_path, monkeypatch):
    import pipeline.engine.memo as memo
    import pipeline.teachers.tokenizers as tokenizers
    from pipeline.teachers.tokenizers import (
        CountCache,
        chats_tokens,
        load_tokenizer,
        local_model_dir,
        tokenizer_digest,
    )

    tok = load_tokenizer(local_model_dir(load_config([]).teacher.model_dir), "t")
    chats = [[{"role": "user", "content": f"Question {i}?"},
              {"role": "assistant", "content": "An answer. " * i}] for i in range(5)]
    plain = chats_tokens(lambda: tok, chats, [False] * 5)
    assert plain == [len(tok.apply_chat_template(c, tokenize=True, return_dict=False))
                     for c in chats]
    monkeypatch.setattr(tokenizers, "COUNT_CHUNK", 2)
    assert chats_tokens(lambda: tok, chats, [False] * 5) == plain, "a chunk at a time, all counted"
    cache = CountCache(str(tmp_path), tokenizer_digest(tok))
    assert chats_tokens(lambda: tok, chats, [False] * 5, cache) == plain
    assert len(list(tmp_path.rglob("*.arrow"))) == 1

    def never():
        raise AssertionError("the tokenizer was loaded for counts in the cache")

    assert chats_tokens(never, chats, [False] * 5, cache) == plain, "read back"
    memo._OPEN.clear()  # as in a new worker process
    again = CountCache(str(tmp_path), tokenizer_digest(tok))
    assert chats_tokens(never, chats[::-1], [False] * 5, again) == plain[::-1], (
        "by chat, whatever the block and the order: a new worker reads what others counted")
    changed = [*chats[:4], [*chats[4][:1], {"role": "assistant", "content": "Other."}]]
    loaded: list[int] = []
    counts = chats_tokens(lambda: loaded.append(1) or tok, changed, [False] * 5, again)
    assert counts[:4] == plain[:4]
    assert counts[4] == len(tok.apply_chat_template(changed[4], tokenize=True, return_dict=False))
    assert chats_tokens(lambda: tok, chats[:1], [True], again)[0] > plain[0], (
        "the generation prompt is part of the key")
    assert len(list(tmp_path.rglob("*.arrow"))) == 3


def test_the_tokenizer_digest_is_read_back_for_the_same_files(tmp_path, monkeypatch):
    """A rebuild names its count cache without loading the tokenizer; a changed file digests
    again."""
    import shutil

    import pipeline.teachers.tokenizers as tokenizers

    source = tokenizers.local_model_dir(load_config([]).teacher.model_dir)
    folder = tmp_path / "tok"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    loaded = tokenizers.tokenizer_digest(tokenizers.load_tokenizer(str(folder), "t"))
    memo_dir = str(tmp_path / "memo")
    assert tokenizers.named_tokenizer_digest(str(folder), "t", memo_dir) == loaded

    def never(*_):
        raise AssertionError("loaded the tokenizer for a digest already known")

    monkeypatch.setattr(tokenizers, "load_tokenizer", never)
    assert tokenizers.named_tokenizer_digest(str(folder), "t", memo_dir) == loaded
    (known,) = (tmp_path / "memo" / "digests").iterdir()
    known.write_text("")  # damaged: digested again
    with pytest.raises(AssertionError, match="loaded the tokenizer"):
        tokenizers.named_tokenizer_digest(str(folder), "t", memo_dir)
    config = folder / "tokenizer_config.json"
    config.write_text(config.read_text() + "\n")  # any change to a file: size or time
    with pytest.raises(AssertionError, match="loaded the tokenizer"):
        tokenizers.named_tokenizer_digest(str(folder), "t", memo_dir)
