"""Claude through Anthropic's own APIs, as RM-R1's authors asked it: the Messages API request by
request and Message Batches, against a loopback play of both endpoints driven by the real
`anthropic` SDK. Anthropic's faults (429 with retry-after, 529 overloaded, batch results
errored, expired or canceled), a stop while a batch runs, the cost cap across batches, and
cached prompt tokens priced at the cache rates in what a run reports it spent."""

from __future__ import annotations

import time

import pytest
from batch_stop import stop_while_a_job_waits
from fake_anthropic import FakeAnthropic, error, message, overloaded, rate_limited

from pipeline.engine.config import ConfigError
from pipeline.plan import make_plan
from pipeline.settings import load_config
from pipeline.teachers.batch_jobs import AnthropicJobs, answer_in_jobs
from pipeline.teachers.cache import ResponseCache, request_key
from pipeline.teachers.client import TeacherClient
from pipeline.teachers.prices import price_usd
from pipeline.teachers.requests import request_for, uncached, worst_case
from pipeline.teachers.spend import Meter

CHAT = [[{"role": "system", "content": "You are an impartial judge."},
         {"role": "user", "content": f"pair {i}"}] for i in range(10)]


def teacher(tmp_path, url: str, backend: str = "anthropic", **extra):
    return load_config([f"teacher={backend}", "teacher.model=claude-3-7-sonnet-20250219",
                        f"teacher.cache_dir={tmp_path}/cache", f"teacher.base_url={url}",
                        "teacher.max_attempts=3", *(["teacher.batch_poll_s=0.01"]
                                                    if backend.endswith("batch") else []),
                        *(f"teacher.{k}={v}" for k, v in extra.items())]).teacher


def endpoints(cfg):
    """Where the backend sends a stage's requests, as the build asks it."""
    from pipeline.teachers.backends import backend_of

    return backend_of(cfg).endpoints(cfg, 1, None)


def echo(params, n):
    return message(f"trace for {params['messages'][-1]['content']}")


def cached(cfg, chats):
    cache = ResponseCache(cfg.cache_dir)
    return [(cache.get(request_key(request_for(cfg, c))) or {}).get("content") for c in chats]


def test_the_messages_api_gets_claude_s_own_request_and_its_cached_tokens_are_priced_apart(
        tmp_path):
    """System prompt at the top level, marked for caching; max_tokens as RM-R1 sets it; the
    prompt tokens read from and written to the cache priced at 0.1x and 1.25x the input."""
    meter = Meter(None)
    def first_writes(p, n):  # the two are sent together: pair 0's answer says it wrote
        wrote = 900 if p["messages"][0]["content"] == "pair 0" else 0
        return message("<answer>[[A]]</answer>", input_tokens=100, output_tokens=50,
                       cache_read=900, cache_write=wrote)

    with FakeAnthropic(first_writes) as api:
        cfg = teacher(tmp_path, api.base_url, max_tokens=8192)
        results = TeacherClient(cfg, endpoints(cfg), meter).complete_all(CHAT[:2])
    sent = next(r for r in api.requests if r["messages"][0]["content"] == "pair 0")
    assert sent["system"] == [{"type": "text", "text": "You are an impartial judge.",
                               "cache_control": {"type": "ephemeral"}}]
    assert sent["messages"] == [{"role": "user", "content": "pair 0"}]
    assert sent["max_tokens"] == 8192 and sent["model"] == "claude-3-7-sonnet-20250219"
    assert "anthropic-version" in api.headers[0], "Anthropic's own API, not its OpenAI-compatible one"
    first, second = results
    assert first.content == "<answer>[[A]]</answer>" and first.finish_reason == "stop"
    # every prompt token counts, the cached ones too; what was read from the cache apart
    assert (first.prompt_tokens, first.cache_read_tokens, first.cache_write_tokens) == (
        1900, 900, 900)
    assert (second.prompt_tokens, second.cache_read_tokens) == (1000, 900)
    # $3 in, $15 out, $0.30 cache read, $3.75 cache write per million (conf/prices.yaml)
    cost = (100 * 3 + 900 * 0.3 + 900 * 3.75 + 50 * 15 + 100 * 3 + 900 * 0.3 + 50 * 15) / 1e6
    assert meter.spent == pytest.approx(cost)
    assert meter.stages["teacher"].cache_read_tokens == 1800
    # a prompt read from the cache costs a tenth of the input price
    assert price_usd(cfg, 1000, 0) == pytest.approx(1000 * 3 / 1e6)
    assert price_usd(cfg, 1000, 0, cache_read=1000) == pytest.approx(1000 * 0.3 / 1e6)


def test_429_waits_what_retry_after_says_and_529_overloaded_is_tried_again(tmp_path):
    def flaky(params, n):
        if n == 1:
            return rate_limited(0.4)
        if n == 2:
            return overloaded()
        return echo(params, n)

    with FakeAnthropic(flaky) as api:
        cfg = teacher(tmp_path, api.base_url, max_attempts=3)
        start = time.monotonic()
        (result,) = TeacherClient(cfg, endpoints(cfg)).complete_all(CHAT[:1])
        took = time.monotonic() - start
    assert result.content == "trace for pair 0" and result.error is None
    assert len(api.requests) == 3 and took >= 0.4


def test_anthropic_s_refusal_is_the_row_s_error_and_not_retried(tmp_path):
    with FakeAnthropic(lambda p, n: error(400, "invalid_request_error",
                                          "prompt is too long: 250000 tokens")) as api:
        cfg = teacher(tmp_path, api.base_url)
        (result,) = TeacherClient(cfg, endpoints(cfg)).complete_all(CHAT[:1])
    assert len(api.requests) == 1
    assert result.error.startswith("BadRequestError 400") and "prompt is too long" in result.error
    assert cached(cfg, CHAT[:1]) == [None], "a refusal is not an answer: a rerun asks again"


def test_thinking_is_asked_for_kept_beside_the_answer_and_never_in_it(tmp_path):
    with FakeAnthropic(lambda p, n: message("<answer>[[B]]</answer>",
                                            thinking="B cites the source.")) as api:
        cfg = teacher(tmp_path, api.base_url, thinking_budget=2048, max_tokens=8192)
        (result,) = TeacherClient(cfg, endpoints(cfg)).complete_all(CHAT[:1])
    assert api.requests[0]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert result.content == "<answer>[[B]]</answer>"
    record = ResponseCache(cfg.cache_dir).get(request_key(request_for(cfg, CHAT[0])))
    assert record["reasoning"] == "B cites the source."
    # the budget changes the answer, so it is part of the cache key
    plain = teacher(tmp_path, api.base_url)
    assert request_key(request_for(plain, CHAT[0])) != request_key(request_for(cfg, CHAT[0]))


@pytest.mark.parametrize("overrides, said", [
    (["teacher.thinking_budget=512"], "teacher.thinking_budget=512: set at least 1024"),
    (["teacher.thinking_budget=9000"], "and under teacher.max_tokens=8192"),
    (["teacher.thinking_budget=2048", "teacher.temperature=0.2"],
     "teacher.temperature=0.2: Anthropic takes no temperature but 1 with extended thinking"),
    (["teacher.base_url=null", "teacher.api_key_env=RUBRICFORGE_NO_SUCH_KEY"],
     "teacher=anthropic needs an API key in the environment variable RUBRICFORGE_NO_SUCH_KEY"),
])
def test_settings_anthropic_refuses_are_refused_before_any_work(overrides, said):
    cfg = load_config(["teacher=anthropic", "teacher.model=claude-3-7-sonnet-20250219",
                       "teacher.base_url=http://127.0.0.1:9/", *overrides])
    with pytest.raises(ConfigError, match=said.replace("(", r"\(").replace(")", r"\)")):
        make_plan(cfg)


# -- Message Batches ---------------------------------------------------------------------------


def test_errored_expired_and_canceled_results_go_again_and_a_refused_one_is_the_row_s_error(
        tmp_path):
    """The first batch's requests 3, 6 and 9 fail three ways, and one is invalid: the three go
    again in a second batch at half the price; the invalid one is not retried and its row gets
    Anthropic's reason."""
    kinds = {3: "errored", 6: "expired", 9: "canceled"}

    def result(params, n):
        i = int(params["messages"][-1]["content"].split()[-1])
        if i == 5:
            return "invalid"
        return kinds.get(i) if len(api.batches) == 1 else None

    meter = Meter(None)
    with FakeAnthropic(echo, batch_result=result) as api:
        cfg = teacher(tmp_path, api.base_url, backend="anthropic_batch")
        errors = answer_in_jobs(uncached(cfg, CHAT), cfg, "teacher", meter, AnthropicJobs)
        assert len(api.batches) == 2
        second = [r["params"]["messages"][-1]["content"] for r in api.batches["msgbatch_1"][
            "requests"]]
    assert sorted(second) == ["pair 3", "pair 6", "pair 9"], "the invalid one is not sent again"
    bad = request_key(request_for(cfg, CHAT[5]))
    assert errors[bad] == ("batch request errored: invalid_request_error: prompt is too long")
    assert {k: e for k, e in errors.items() if k != bad} == dict.fromkeys(
        [request_key(request_for(cfg, c)) for c in CHAT if c is not CHAT[5]])
    assert cached(cfg, CHAT) == [f"trace for pair {i}" if i != 5 else None for i in range(10)]
    assert set(api.answered.values()) == {1}, "nothing answered twice"
    assert meter.spent == pytest.approx(9 * (11 * 3 + 7 * 15) / 1e6 / 2), "half the price"
    assert not list((tmp_path / "cache" / "batches").glob("*.json")), "ended batches forgotten"


def test_a_request_that_keeps_expiring_ends_as_the_row_s_error_after_max_attempts(tmp_path):
    with FakeAnthropic(echo, batch_result=lambda p, n: "expired") as api:
        cfg = teacher(tmp_path, api.base_url, backend="anthropic_batch", max_attempts=2)
        errors = answer_in_jobs(uncached(cfg, CHAT[:2]), cfg, "teacher", None, AnthropicJobs)
    assert len(api.batches) == 2 and set(errors.values()) == {"batch request expired"}


def test_under_a_cost_cap_batches_go_one_after_the_other_and_the_cap_holds(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(AnthropicJobs, "max_lines", 4)
    with FakeAnthropic(echo) as api:
        probe = teacher(tmp_path, api.base_url, backend="anthropic_batch")
        worst = worst_case(probe, CHAT[0])[1]
        cfg = teacher(tmp_path, api.base_url, backend="anthropic_batch",
                      max_cost_usd=4.5 * worst)
        meter = Meter(cfg.max_cost_usd)
        errors = answer_in_jobs(uncached(cfg, CHAT), cfg, "teacher", meter, AnthropicJobs)
        sizes = [len(b["requests"]) for b in api.batches.values()]
    assert sizes == [4, 4, 2] and set(errors.values()) == {None}
    assert meter.spent <= cfg.max_cost_usd


def test_a_stopped_build_picks_up_its_batch_instead_of_paying_again(tmp_path):
    with FakeAnthropic(echo) as api:
        cfg = teacher(tmp_path, api.base_url, backend="anthropic_batch")
        requests = uncached(cfg, CHAT[:6])
        api.stalled = True
        stop_while_a_job_waits(AnthropicJobs, cfg, requests)
        api.stalled = False
        errors = answer_in_jobs(uncached(cfg, CHAT[:6]), cfg, "teacher", None, AnthropicJobs)
        assert len(api.batches) == 1, "one batch, picked up, never submitted again"
    assert set(errors.values()) == {None}
    assert cached(cfg, CHAT[:6]) == [f"trace for pair {i}" for i in range(6)]
    assert set(api.answered.values()) == {1}
