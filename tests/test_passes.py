"""The RM-R1 recipe's second chances and checks: pass 2 with a hint (and the hint-leak rule),
order-swap consistency, and one verdict rule shared by the filter and verl's reward."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from pipeline.engine.config import ConfigError
from pipeline.engine.schema import ALIVE, CANONICAL_COLUMNS, REJECTED, SFT, conform
from pipeline.engine.stage import BuildContext
from pipeline.output.formats import to_sft
from pipeline.output.manifest import Tally, quality
from pipeline.plan import make_plan
from pipeline.rules.hint_leak import hint_leak
from pipeline.rules.judge_prompt import judge_messages
from pipeline.rules.templates import fill
from pipeline.rules.verdict import WINNER_TO_LABEL, check_trace, compute_score
from pipeline.settings import load_config
from stages.bootstrap import Bootstrap
from stages.swap_consistency import SwapConsistency, SwapConsistencyParams
from stages.teacher import Teacher
from stages.verdict_filter import VerdictFilter

from conftest import chatml, messages
from fake_openai import FakeOpenAI, completion

COLUMNS = (*CANONICAL_COLUMNS, "split", "winner", "context_messages", "trace", "teacher_model",
           "finish_reason", "prompt_tokens", "completion_tokens", "latency_s", "cached",
           "teacher_error", "pass_index", "verdict")


def trace(label: str, note: str = "Canberra is the capital.") -> str:
    return ("<type>Chat</type>\n<rubric>Accuracy (weight 100%)<justify>Facts decide a capital "
            f"question.</justify>\n</rubric>\n<eval><summary_A>names a city</summary_A> {note} "
            f"<summary_B>says Sydney</summary_B></eval>\n<answer>[[{label}]]</answer>")


def row(i: int, winner: str, split: str = SFT, **extra) -> dict:
    q = f"Question {i}: what is the capital of Australia?"
    good, bad = f"Canberra ({i}).", f"Sydney ({i})."
    cfg = load_config([])
    a, b = (good, bad) if winner == "model_a" else (bad, good)
    return {"pair_id": f"p{i}", "source": "s", "source_index": i, "outcome": ALIVE, "domain": "chat",
            "prompt": messages(("user", q)), "chosen": messages(("assistant", good)),
            "rejected": messages(("assistant", bad)), "split": split, "winner": winner,
            "context_messages": judge_messages(messages(("user", q)), a, b, cfg.prompt), **extra}


def table(rows: list[dict]) -> pa.Table:
    return conform(pa.Table.from_pylist(rows), COLUMNS)


@pytest.fixture
def ctx(tmp_path):
    cfg = load_config(["teacher=openai", "teacher.model=judge-1", "teacher2=openai",
                       "teacher2.model=judge-2", f"teacher.cache_dir={tmp_path}/cache",
                       f"teacher2.cache_dir={tmp_path}/cache", "teacher.max_attempts=1",
                       "teacher2.max_attempts=1"])
    return BuildContext(cfg)


def rejected_by_filter(i: int, winner: str, said: str) -> dict:
    return row(i, winner, trace=trace(said), teacher_model="judge-1", verdict=said,
               outcome=REJECTED, reason="wrong_verdict", decided_by="verdict_filter",
               prompt_tokens=100, completion_tokens=50, cached=False)


def test_pass2_asks_teacher2_with_the_flawed_trace_and_the_correct_verdict(ctx):
    rows = table([rejected_by_filter(0, "model_b", said="A"),
                  row(1, "model_a", trace=trace("A"), teacher_model="judge-1", verdict="A")])
    with FakeOpenAI(lambda body, n: completion(trace("B"))) as server:
        ctx.endpoints["bootstrap"] = server.base_url
        out = {r["source_index"]: r for r in Bootstrap(None, ctx).process(rows).to_pylist()}
    assert len(server.requests) == 1, "only the rejected row is asked again"
    req = server.requests[0]
    assert req["model"] == "judge-2"
    sent = req["messages"]
    assert sent[:2] == rows.to_pylist()[0]["context_messages"]
    assert sent[2] == {"role": "assistant", "content": trace("A")}
    assert sent[3]["role"] == "user" and "Chatbot B" in sent[3]["content"]
    assert sent[3]["content"] == fill(ctx.cfg.prompt.hint, {"label": "B"})
    fixed = out[0]
    assert (fixed["outcome"], fixed["pass_index"], fixed["teacher_model"]) == (ALIVE, 2, "judge-2")
    assert fixed["pass1"] == {"teacher_model": "judge-1", "verdict": "A", "reason": "wrong_verdict",
                              "prompt_tokens": 100, "completion_tokens": 50}
    assert out[1]["outcome"] == ALIVE and out[1]["pass_index"] is None, "kept rows are untouched"


def test_pass2_rejects_wrong_verdicts_and_hint_leaks(ctx):
    replies = {0: trace("A"), 1: trace("B", note="As the hint says, Chatbot B is right."),
               2: trace("B", note="My previous evaluation was wrong.")}
    rows = table([rejected_by_filter(i, "model_b", said="A") for i in replies])

    def reply(body, n):
        i = int(body["messages"][1]["content"].split("Question ")[1].split(":")[0])
        return completion(replies[i])

    with FakeOpenAI(reply) as server:
        ctx.endpoints["bootstrap"] = server.base_url
        out = {r["source_index"]: r for r in Bootstrap(None, ctx).process(rows).to_pylist()}
    assert (out[0]["outcome"], out[0]["reason"]) == (REJECTED, "wrong_verdict")
    assert out[0]["detail"] == "pass 2: said A, winner is B; pass 1: wrong_verdict"
    assert (out[1]["reason"], out[2]["reason"]) == ("hint_leak", "hint_leak")
    assert "hint" in out[1]["detail"] and "earlier judgement" in out[2]["detail"]
    assert all(r["decided_by"] == "bootstrap" and r["pass_index"] == 2 for r in out.values())


def test_sft_rows_never_contain_the_hint(ctx):
    rows = table([rejected_by_filter(0, "model_b", said="A")])
    with FakeOpenAI(lambda body, n: completion(trace("B"))) as server:
        ctx.endpoints["bootstrap"] = server.base_url
        kept = Bootstrap(None, ctx).process(rows).to_pylist()
    sft = to_sft(kept).to_pylist()[0]
    hint = fill(ctx.cfg.prompt.hint, {"label": "B"})
    assert sft["messages"] == [*kept[0]["context_messages"],
                               {"role": "assistant", "content": trace("B")}]
    assert sft["pass_index"] == 2 and sft["teacher_model"] == "judge-2"
    texts = [m["content"] for m in sft["messages"] + sft["context_messages"] + sft["judge_response"]]
    assert not any(hint in t or "wrong verdict" in t for t in texts)


def test_a_judge_that_always_answers_a_keeps_nothing_with_swap_consistency(ctx):
    rows = table([row(i, "model_a" if i % 2 else "model_b") for i in range(6)])
    with FakeOpenAI(lambda body, n: completion(trace("A"))) as server:
        for name in ("teacher", "swap_consistency"):
            ctx.endpoints[name] = server.base_url
        judged = VerdictFilter(None, ctx).process(Teacher(None, ctx).process(rows))
        alive = judged.filter(pa.compute.equal(judged.column("outcome"), ALIVE))
        assert alive.num_rows == 3, "without the swap, position bias keeps every 'A' pair"
        swapped = SwapConsistency(SwapConsistencyParams(), ctx).process(alive).to_pylist()
    assert len(server.requests) == 6 + 3
    assert all(r["outcome"] == REJECTED and r["reason"] == "position_inconsistent" for r in swapped)
    assert swapped[0]["swap"]["verdict"] == "A" and swapped[0]["swap"]["consistent"] is False
    assert swapped[0]["detail"] == "A/B swapped: said A, winner is B"
    # the swapped request puts the better answer on the other side

    def canberra_first(body: dict) -> tuple[str, bool]:
        text = body["messages"][1]["content"]
        return text.split(":")[0], text.index("Canberra") < text.index("Sydney")

    first = dict(canberra_first(b) for b in server.requests[:6])
    for question, order in map(canberra_first, server.requests[6:]):
        assert order != first[question]


def test_a_consistent_judge_keeps_its_pairs(ctx):
    rows = table([row(i, "model_a" if i % 2 else "model_b") for i in range(4)])

    def right(body, n):  # the answer holding "Canberra" is better, wherever it stands
        text = body["messages"][1]["content"]
        return completion(trace("A" if text.index("Canberra") < text.index("Sydney") else "B"))

    with FakeOpenAI(right) as server:
        for name in ("teacher", "swap_consistency"):
            ctx.endpoints[name] = server.base_url
        judged = VerdictFilter(None, ctx).process(Teacher(None, ctx).process(rows))
        swapped = SwapConsistency(SwapConsistencyParams(), ctx).process(judged).to_pylist()
    assert all(r["outcome"] == ALIVE and r["swap"]["consistent"] for r in swapped)
    tally = Tally()
    tally.add([r | {"outcome": "kept"} for r in swapped])
    q = quality(tally)
    assert q["swap_agreement"] == [{"source": "s", "teacher": "judge-1", "judged": 4,
                                    "consistent": 4, "agreement": 1.0}]
    # both orders were right, so both traces are kept: one says A, the other B
    assert q["kept_in_both_orders"] == {"s": 4}
    assert {(p["winner_a"], p["winner_b"]) for p in q["position_balance"]} == {(4, 4)}
    sft = to_sft(swapped).to_pylist()
    assert len(sft) == 8
    for first, second in zip(sft[::2], sft[1::2], strict=True):
        assert {first["winner"], second["winner"]} == {"model_a", "model_b"}
        assert first["pair_id"] == second["pair_id"] and second["pass_index"] == 1
        said = f"[[{WINNER_TO_LABEL[second['winner']]}]]</answer>"
        assert second["judge_response"][0]["content"].endswith(said)
        assert second["messages"] == second["context_messages"] + second["judge_response"]
        assert second["context_messages"][1] != first["context_messages"][1]


def test_a_swapped_trace_is_kept_only_when_asked_and_good(ctx):
    """keep_both=false keeps one order; a consistent swapped verdict in a trace that fails a
    check (here an invented quote) is counted consistent but not kept as a second row."""
    rows = table([row(i, "model_a" if i % 2 else "model_b") for i in range(4)])

    def right(body, n):
        text = body["messages"][1]["content"]
        label = "A" if text.index("Canberra") < text.index("Sydney") else "B"
        invented = n > 4 and n % 2  # two of the four swapped judgements
        return completion(trace(label, "<quote_A>Perth</quote_A>" if invented else ""))

    with FakeOpenAI(right) as server:
        for name in ("teacher", "swap_consistency"):
            ctx.endpoints[name] = server.base_url
        judged = VerdictFilter(None, ctx).process(Teacher(None, ctx).process(rows))
        both = SwapConsistency(SwapConsistencyParams(), ctx).process(judged).to_pylist()
        one = SwapConsistency(SwapConsistencyParams(keep_both=False), ctx).process(judged)
    assert all(r["swap"]["consistent"] for r in both)
    assert sum(r["swap_messages"] is not None for r in both) == 2
    assert one.column("swap_messages").null_count == 4
    assert len(to_sft(one.to_pylist())) == 4 and len(to_sft(both)) == 6


def test_quality_report_has_domains_passes_and_position_balance():
    tally = Tally()
    base = {"source": "s", "split": SFT, "reason": "", "decided_by": "", "completion_tokens": 10}
    tally.add([
        base | {"outcome": "kept", "domain": "math", "winner": "model_a", "verdict": "A",
                "teacher_model": "t1", "pass_index": 1, "trace": "x", "source_index": 0},
        base | {"outcome": "kept", "domain": "chat", "winner": "model_b", "verdict": "B",
                "teacher_model": "t2", "pass_index": 2, "trace": "y", "source_index": 1,
                "pass1": {"teacher_model": "t1", "verdict": "A", "reason": "wrong_verdict",
                          "prompt_tokens": 5, "completion_tokens": 6}},
        base | {"outcome": "rejected", "domain": "chat", "winner": "model_a", "verdict": "B",
                "teacher_model": "t1", "pass_index": 1, "trace": "z", "reason": "wrong_verdict",
                "source_index": 2},
    ])
    q = quality(tally)
    by_domain = {(a["domain"], a["pass"], a["teacher"]): (a["judged"], a["verdict_correct"], a["kept"])
                 for a in q["verdict_accuracy_by_domain"]}
    assert by_domain == {("chat", 1, "t1"): (2, 0, 0), ("chat", 2, "t2"): (1, 1, 1),
                         ("math", 1, "t1"): (1, 1, 1)}
    assert q["position_balance"] == [{"part": SFT, "source": "s", "winner_a": 1, "winner_b": 1,
                                      "share_a": 0.5}]
    calls = Counter({(u, m): n for (u, m, f), n in tally.usage.items() if f == "calls"})
    assert calls == Counter({("pass 1", "t1"): 3, ("pass 2", "t2"): 1})


@pytest.mark.parametrize("text", [
    "As the hint says, B is better.", "We were told that B wins.", "The correct verdict is B.",
    "The reference label says B.", "My previous evaluation was wrong.",
    "Unlike the initial assessment, B is right.", "On second thought, B.",
    "My first verdict was hasty.", "The earlier analysis missed the units.",
    "Let me re-evaluate the responses.", "Reconsidering both answers, B wins.",
    "I made a mistake before.", "the better response is Chatbot B. Write a new, complete evaluation",
])
def test_hint_leaks_are_caught(text):
    hint = fill(load_config([]).prompt.hint, {"label": "B"})
    assert hint_leak(trace("B", note=text), hint)


@pytest.mark.parametrize("text", [
    "The correct answer is 12, and only Chatbot A gets 12.", "The first response is longer.",
    "In the previous turn the user asked for brevity.", "Chatbot A urges the client to reconsider.",
    "B evaluates the integral correctly.", "The user's earlier question was about Python.",
    "The first evaluation criterion is accuracy.", "As the above analysis shows, A is right.",
    "Chatbot A's initial assessment of the bug is wrong.",
])
def test_ordinary_judging_words_are_not_leaks(text):
    hint = fill(load_config([]).prompt.hint, {"label": "B"})
    assert hint_leak(trace("B", note=text), hint) is None


ADVERSARIAL = [
    trace("A"), trace("B"),
    trace("A", note="B wrote <answer>[[B]]</answer> in its reply."),  # quoted tag, early
    trace("A") + "\n<answer>[[B]]</answer>",  # two verdicts at the end
    trace("A") + " Hope this helps!",  # text after the verdict
    trace("A").replace("<answer>[[A]]</answer>", "<answer>[[ A ]]</answer>"),
    trace("A").replace("[[A]]", "[[a]]"), trace("A").replace("[[A]]", "[[C]]"),
    trace("A").replace("<answer>", "<Answer>"), "<answer>[[A]]</answer>", "[[A]]", "", "   ",
    trace("A") + "\n\n\n   ", trace("A").replace("Chatbot", "Chabot"),
    "<answer>[[A]]</answer>" + " filler" * 30 + "<answer>[[B]]</answer>",
    trace("B") + "x" * 81, "<answer>[[B]]</answer>" + "y" * 60,
]


@pytest.mark.parametrize("text", ADVERSARIAL)
@pytest.mark.parametrize("winner", ["model_a", "model_b"])
def test_verl_reward_and_filter_agree(text, winner):
    """The filter keeps only what the reward scores +1; what it punishes is never kept."""
    reward = compute_score("rubricforge/s", text, winner, {"index": 0})
    kept = check_trace(text, winner).reason == ""
    assert reward in (1.0, -1.0)
    assert not kept or reward == 1.0
    assert reward == 1.0 or not kept


def test_pass2_must_come_after_the_filter():
    with pytest.raises(ConfigError, match="'bootstrap' retries rows of 'verdict_filter'"):
        make_plan(load_config(["~recipe.stages.verdict_filter"]))


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
