"""The teacher client against a loopback server: cache, faults as row errors, no key leaks."""

from __future__ import annotations

import dataclasses
import json
import os
import threading

import pytest
from omegaconf import OmegaConf

from pipeline.settings import load_config
from pipeline.teachers.cache import ResponseCache, request_key
from pipeline.teachers.client import TeacherClient
from pipeline.teachers.model_identity import _identity
from pipeline.teachers.requests import request_for

from fake_openai import FakeOpenAI, completion

SECRET = "sk-test-0123456789abcdef"
MSGS = [[{"role": "user", "content": f"question {i}"}] for i in range(5)]


@pytest.fixture
def teacher(tmp_path, monkeypatch):
    monkeypatch.setenv("RF_TEST_KEY", SECRET)
    cfg = load_config(["teacher=openai", "teacher.model=fake-judge", "teacher.max_attempts=2",
                       "teacher.api_key_env=RF_TEST_KEY", f"teacher.cache_dir={tmp_path}/cache",
                       "teacher.timeout_s=10"])
    return cfg.teacher


def test_answers_are_cached_and_never_asked_twice(teacher):
    with FakeOpenAI(lambda body, n: completion(f"trace for {body['messages'][0]['content']}")) as s:
        first = TeacherClient(teacher, s.base_url).complete_all(MSGS)
        again = TeacherClient(teacher, s.base_url).complete_all(MSGS)
        assert len(s.requests) == len(MSGS)
    assert [r.content for r in first] == [f"trace for question {i}" for i in range(5)]
    assert not any(r.cached for r in first) and all(r.cached for r in again)
    assert [r.content for r in again] == [r.content for r in first]
    assert first[0].prompt_tokens == 11 and first[0].completion_tokens == 7


def test_sampling_settings_are_sent_and_keyed(teacher):
    with FakeOpenAI(lambda body, n: completion("ok")) as s:
        TeacherClient(teacher, s.base_url).complete_all(MSGS[:1])
        sent = s.requests[0]
        assert s.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert sent["model"] == "fake-judge" and sent["max_completion_tokens"] == teacher.max_tokens
    longer = load_config(["teacher=openai", "teacher.model=fake-judge",
                          "teacher.max_tokens=99"]).teacher
    assert request_key(request_for(teacher, MSGS[0])) != request_key(request_for(longer, MSGS[0]))


@pytest.mark.parametrize("setting, value, sent_as", [
    ("temperature", 0.7, "temperature"), ("top_p", 0.9, "top_p"), ("seed", 7, "seed"),
    ("max_tokens", 99, "max_completion_tokens")])
def test_every_sampling_setting_sent_is_in_the_cache_key(teacher, setting, value, sent_as):
    """A user who changes a setting is never served answers asked with the old one: each
    setting sent to the API changes the key, and the key changes only with what is sent."""
    changed = OmegaConf.merge(teacher, {setting: value})
    with FakeOpenAI(lambda body, n: completion("ok")) as s:
        TeacherClient(changed, s.base_url).complete_all(MSGS[:1])
        assert s.requests[0][sent_as] == value
    assert request_key(request_for(teacher, MSGS[0])) != request_key(request_for(changed, MSGS[0]))
    again = OmegaConf.merge(teacher, {setting: value})
    assert request_key(request_for(changed, MSGS[0])) == request_key(request_for(again, MSGS[0]))


def test_endpoint_and_key_are_not_part_of_the_cache_key(teacher):
    moved = load_config(["teacher=openai", "teacher.model=fake-judge",
                         "teacher.base_url=http://elsewhere:1/v1", "teacher.api_key_env=OTHER",
                         f"teacher.cache_dir={teacher.cache_dir}", "teacher.max_attempts=2",
                         "teacher.timeout_s=10"]).teacher
    assert request_key(request_for(teacher, MSGS[0])) == request_key(request_for(moved, MSGS[0]))


@pytest.mark.parametrize("reply, kind", [
    ((500, json.dumps({"error": {"message": "boom"}})), "InternalServerError"),
    ((200, "{not json"), ""),
    ((200, "[]"), "response without choices"),
    ((200, json.dumps({"id": "x", "choices": []})), "response without choices"),
    ((400, json.dumps({"error": {"message": f"bad key {SECRET}"}})), "BadRequestError"),
])
def test_failures_become_row_errors_without_the_key(teacher, tmp_path, reply, kind):
    with FakeOpenAI(lambda body, n: reply) as s:
        results = TeacherClient(teacher, s.base_url).complete_all(MSGS[:2])
    for r in results:
        assert r.content is None and r.error and kind in r.error
        assert SECRET not in r.error
    assert not list((tmp_path / "cache").rglob("*.json")), "failures are not cached"


def test_transient_errors_are_retried_up_to_max_attempts(teacher):
    with FakeOpenAI(lambda body, n: (500, "{}") if n == 1 else completion("second try")) as s:
        [result] = TeacherClient(teacher, s.base_url).complete_all(MSGS[:1])
        assert len(s.requests) == 2
    assert result.content == "second try" and result.error is None


def test_truncated_answers_keep_their_finish_reason(teacher):
    with FakeOpenAI(lambda body, n: completion("half a tra", finish_reason="length")) as s:
        [result] = TeacherClient(teacher, s.base_url).complete_all(MSGS[:1])
    assert result.finish_reason == "length"


def test_cache_survives_a_corrupt_entry(tmp_path):
    cache = ResponseCache(tmp_path)
    cache.put("ab" * 32, {"content": "x"})
    assert cache.get("ab" * 32) == {"content": "x"}
    (tmp_path / "ab" / f"{'ab' * 32}.json").write_text("{truncated")
    assert cache.get("ab" * 32) is None
    assert not list(tmp_path.rglob(".tmp-*")), "no temporary files are left behind"


def test_identical_requests_in_one_batch_are_paid_once(teacher):
    with FakeOpenAI(lambda body, n: completion("same")) as s:
        results = TeacherClient(teacher, s.base_url).complete_all([MSGS[0], MSGS[1], MSGS[0]])
        assert len(s.requests) == 2
    assert [r.cached for r in results] == [False, False, True]
    assert results[0].latency_s == results[2].latency_s


def test_a_429_pauses_every_request_for_retry_after(teacher):
    def reply(body, n):
        if n == 1:
            return 429, json.dumps({"error": {"message": "slow down"}}), {"Retry-After": "1"}
        return completion("ok")

    cfg = load_config(["teacher=openai", "teacher.model=fake-judge", "teacher.max_attempts=3",
                       f"teacher.cache_dir={teacher.cache_dir}-429", "teacher.concurrency=1",
                       "teacher.rpm=6000"])
    with FakeOpenAI(reply) as s:
        results = TeacherClient(cfg.teacher, s.base_url).complete_all(MSGS[:3])
        assert len(s.requests) == 4
        gaps = [b - a for a, b in zip(s.arrivals, s.arrivals[1:], strict=False)]
    assert all(r.content == "ok" for r in results)
    assert gaps[0] >= 0.95, "the refused request waits what Retry-After says"


# The client is set to 3 requests a second and the server refuses above 5: the margin absorbs
# the scheduling jitter of a loaded 2-core machine (a request delayed on its way can arrive
# next to a later one). That the client keeps to its own rate is read from the server's
# arrival times as a lower bound on their span, which load can only lengthen.
@pytest.mark.parametrize("server_limits, client_limits", [
    # RPM binds: the server allows 5 requests a second; the client asks for 3
    ({"limit": 5}, ["teacher.rpm=180"]),
    # TPM binds: the server allows 5 requests' tokens a second, and any number of requests;
    # the client asks for 300 tokens a second (3 requests of 100 tokens)
    ({"limit": 1000, "token_limit": 500}, ["teacher.max_tokens=100", "teacher.tpm=18000"]),
], ids=["rpm", "tpm"])
def test_rate_limits_are_respected_without_refusals(teacher, server_limits, client_limits):
    from fake_openai import RateLimited

    server_side = RateLimited(lambda body, n: completion("ok"), window_s=1.0, **server_limits)
    cfg = load_config(["teacher=openai", "teacher.model=fake-judge", "teacher.max_attempts=3",
                       f"teacher.cache_dir={teacher.cache_dir}-limits", "teacher.concurrency=16",
                       *client_limits])
    msgs = [[{"role": "user", "content": f"q{i}"}] for i in range(16)]
    with FakeOpenAI(server_side) as s:
        results = TeacherClient(cfg.teacher, s.base_url).complete_all(msgs)
        span = s.arrivals[-1] - s.arrivals[0]
    assert all(r.content == "ok" for r in results)
    assert server_side.refused == 0
    assert span >= 15 / 3 * 0.9, "16 requests at 3 a second take about 5 s"


@pytest.mark.ray
@pytest.mark.usefixtures("local_ray")
def test_workers_share_one_budget(teacher):
    """Two Ray workers with their own clients stay under one limit together: the budget is a
    named actor per teacher, not a per-process counter."""
    import ray

    from fake_openai import RateLimited

    server_side = RateLimited(lambda body, n: completion("ok"), limit=5, window_s=1.0)
    cfg = load_config(["teacher=openai", "teacher.model=fake-judge", "teacher.max_attempts=1",
                       f"teacher.cache_dir={teacher.cache_dir}-ray", "teacher.concurrency=8",
                       "teacher.rpm=180"])

    @ray.remote
    def worker(teacher_cfg, url, first):
        msgs = [[{"role": "user", "content": f"q{i}"}] for i in range(first, first + 8)]
        return [r.error for r in TeacherClient(teacher_cfg, url).complete_all(msgs)]

    with FakeOpenAI(server_side) as s:
        errors = ray.get([worker.remote(cfg.teacher, s.base_url, k * 8) for k in range(2)])
        span = s.arrivals[-1] - s.arrivals[0]
    assert errors == [[None] * 8] * 2 and server_side.refused == 0
    assert span >= 15 / 3 * 0.9, "16 requests at 3 a second together take about 5 s"


def test_requests_take_turns_among_replicas(teacher):
    """A local teacher with several servers (teacher.replicas): each gets its share."""
    reply = lambda body, n: completion("ok")  # noqa: E731
    with FakeOpenAI(reply) as a, FakeOpenAI(reply) as b:
        results = TeacherClient(teacher, [a.base_url, b.base_url]).complete_all(MSGS)
        assert (len(a.requests), len(b.requests)) == (3, 2)
    assert [r.content for r in results] == ["ok"] * len(MSGS)


def test_retries_back_off_exponentially_with_jitter_unless_the_server_says_how_long():
    import httpx
    import openai

    from pipeline.teachers.client import _retry_pause

    def error(status: int, headers: dict[str, str] | None = None) -> Exception:
        response = httpx.Response(status, headers=headers or {},
                                  request=httpx.Request("POST", "http://x/v1/chat/completions"))
        cls = {429: openai.RateLimitError, 500: openai.InternalServerError,
               400: openai.BadRequestError}[status]
        return cls("failed", response=response, body=None)

    for attempt, base in ((1, 0.5), (2, 1.0), (4, 4.0), (8, 60.0), (12, 60.0)):
        pauses = [_retry_pause(error(500), attempt) for _ in range(200)]
        assert base * 0.5 <= min(pauses) < base * 0.7 and base * 1.3 < max(pauses) <= base * 1.5
    assert _retry_pause(error(429, {"retry-after": "7"}), 3) == 7.0
    assert 0.25 <= _retry_pause(error(429, {"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}),
                                1) <= 0.75, "an HTTP date: backed off instead"
    assert _retry_pause(error(400), 1) is None, "a bad request is not asked again"
    assert _retry_pause(openai.APITimeoutError(httpx.Request("POST", "http://x")), 1) is not None


def test_every_fault_ends_in_an_answer_or_a_row_error_and_nothing_is_answered_twice(
        teacher, monkeypatch):
    from pipeline.teachers import client

    from fake_openai import Faults

    # the backoff schedule a tenth as long (its own test is above): a request that meets a
    # fault on six attempts in a row would otherwise wait ~30 s, and this test take a minute
    backoff = client._retry_pause
    monkeypatch.setattr(client, "_retry_pause",
                        lambda exc, attempt: None if (p := backoff(exc, attempt)) is None
                        else p / 10)

    faults = Faults(lambda body, n: completion(f"trace for {body['messages'][0]['content']}"),
                    every={"rate_limit": 3, "server_error": 5, "hang": 7, "malformed": 11,
                           "empty": 13, "length": 17}, hang_s=4.0)
    # a time-out well above a loaded machine's answer time (a slow answer timed out and asked
    # again would be answered twice), well below the hang
    cfg = load_config(["teacher=openai", "teacher.model=fake-judge", "teacher.max_attempts=8",
                       f"teacher.cache_dir={teacher.cache_dir}-faults", "teacher.concurrency=8",
                       "teacher.timeout_s=2"])
    msgs = [[{"role": "user", "content": f"q{i}"}] for i in range(40)]
    with FakeOpenAI(faults) as s:
        results = TeacherClient(cfg.teacher, s.base_url).complete_all(msgs)
        asked, injected = len(s.requests), dict(faults.injected)
        again = TeacherClient(cfg.teacher, s.base_url).complete_all(msgs)
        rerun = {r["messages"][0]["content"] for r in s.requests[asked:]}
    # a request can meet a fault on all of its attempts (rarely): such a row keeps its error,
    # is not cached, and is the only kind a rerun asks again
    failed = {m[0]["content"] for m, r in zip(msgs, results, strict=True)
              if r.error and r.finish_reason is None}
    assert rerun <= failed, "a rerun asks only what ended in a failed call"
    assert all(injected[f] for f in faults.every), injected
    assert set(faults.answered.values()) == {1}, "no conversation answered twice"
    for r in results:
        assert r.content or r.error, "every row has an answer or an error"
    answered = [i for i, m in enumerate(msgs) if m[0]["content"] not in failed]
    assert len(faults.answered) >= len(answered) >= 36
    empty = [r for r in results if r.error and r.error.startswith("empty answer")]
    truncated = [r for r in results if r.finish_reason == "length"]
    assert len(empty) == injected["empty"] and len(truncated) == injected["length"]
    assert all((again[i].content, again[i].error, again[i].cached)
               == (results[i].content, results[i].error, True) for i in answered)


def greedy_bill(body: dict, n: int):
    """A provider that bills as much as a byte-level tokenizer can: every UTF-8 byte of the
    prompt a token, 3 more per message and 3 for the reply, and all of `max_tokens`."""
    text = sum(len(m["content"].encode()) for m in body["messages"])
    prompt = text + 3 * len(body["messages"]) + 3
    return completion("ok", "length", prompt, body["max_completion_tokens"])


# Prompts that take more tokens than characters / 4: code, digits, non-Latin text.
COSTLY = ["def f(x):\n    return {k: v for k, v in x.items() if v}  # 0x1F",
          "3.14159 2.71828 1.41421 1.73205 0.57721 4.66920",
          "Какой ответ лучше и почему? 哪个回答更好？ どちらが良いですか",
          "q0"]


def test_the_cost_cap_holds_against_a_provider_that_bills_every_byte(teacher):
    """The worst case reserved for a prompt whose tokenizer is unknown is a bound (UTF-8 bytes
    plus the chat format's overhead), not characters / 4: with three clients sharing one meter,
    eight requests in flight, and a provider billing as much as it can, the spend the server
    billed never passes the cap; a higher cap then asks only what was held back."""
    from pipeline.teachers.prices import price_usd
    from pipeline.teachers.spend import Meter

    def capped(cap: float):
        return load_config(["teacher=openai", "teacher.model=fake-judge",
                            f"teacher.cache_dir={teacher.cache_dir}-cap", "teacher.concurrency=8",
                            "teacher.max_tokens=50", "teacher.price_input_per_mtok=1000",
                            "teacher.price_output_per_mtok=1000",
                            f"teacher.max_cost_usd={cap}"]).teacher

    low = capped(2.0)
    msgs = [[{"role": "system", "content": "Judge."},
             {"role": "user", "content": f"{COSTLY[i % 4]} #{i}"}] for i in range(60)]
    meter = Meter(low.max_cost_usd)  # one meter, as the build's actor is for every worker
    billed: list[float] = []

    def bill(body, n):
        reply = greedy_bill(body, n)
        usage = json.loads(reply[1])["usage"]
        billed.append(price_usd(low, usage["prompt_tokens"], usage["completion_tokens"]))
        return reply

    with FakeOpenAI(bill) as s:
        results: dict[int, list] = {}
        clients = [threading.Thread(target=lambda k=k: results.__setitem__(
            k, TeacherClient(low, s.base_url, meter).complete_all(msgs[k::3]))) for k in range(3)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        sent = len(s.requests)
        assert 0 < sent < 60, "the cap was reached, not everything was sent"
        assert sum(billed) <= low.max_cost_usd, f"billed ${sum(billed):.4f} past the cap"
        assert meter.spent == pytest.approx(sum(billed))
        refused = [r for part in results.values() for r in part if r.error]
        assert len(refused) == 60 - sent and all(r.error.startswith("cost_cap") for r in refused)
        more = [TeacherClient(capped(100), s.base_url).complete_all(msgs[k::3]) for k in range(3)]
        assert len(s.requests) == 60, "the rerun asks only what the cap held back"
    assert all(r.content == "ok" for part in more for r in part)


def test_a_stream_keeps_the_concurrency_in_flight_across_batches(teacher):
    """Batches of 3 requests, 8 allowed in flight: the server holds each answer until 8 are
    waiting together, which a client that asks batch by batch never reaches."""
    from pipeline.engine.batches import request_table

    together = threading.Barrier(8, timeout=60)
    refused = "question 13"

    def held(body, n):
        text = body["messages"][0]["content"]
        if text == refused:
            return 400, json.dumps({"error": {"message": "bad request"}})
        if n <= 8:  # the first 8 wait for each other
            together.wait()
        return completion(f"trace for {text}")

    cfg = dataclasses.replace(OmegaConf.to_object(teacher), concurrency=8)
    convs = [[{"role": "user", "content": f"question {i}"}] for i in range(18)]
    requests = {request_key(request_for(cfg, c)): request_for(cfg, c) for c in convs}
    keys = list(requests)
    batches = [request_table({k: requests[k] for k in keys[i:i + 3]}) for i in range(0, 18, 3)]
    with FakeOpenAI(held) as s:
        answered = TeacherClient(cfg, s.base_url).answer_stream(iter(batches))
        assert len(s.requests) == 18 and not together.broken
        # the stage reads what the stream answered, asking nothing again
        results = TeacherClient(cfg, s.base_url, answered=answered).complete_all(convs)
        assert len(s.requests) == 18
    assert set(answered) == set(keys)
    assert [k for k, e in answered.items() if e] == [keys[13]] and "400" in answered[keys[13]]
    assert results[13].error == answered[keys[13]] and results[13].content is None
    assert [r.content for i, r in enumerate(results) if i != 13] == [
        f"trace for question {i}" for i in range(18) if i != 13]
    assert not any(r.cached for r in results)  # asked this run, by the stream


def test_the_model_an_api_reports_is_recorded_and_a_different_one_is_told(teacher, caplog):
    def reply(body, n):
        status, text = completion("ok")
        model = {"question 0": "fake-judge-2025-01-01", "question 1": "other-model"}.get(
            body["messages"][0]["content"], "fake-judge")
        return status, text.replace('"model": "fake"', f'"model": "{model}"')

    with FakeOpenAI(reply) as s:
        TeacherClient(teacher, s.base_url).complete_all(MSGS[:3])
    cache = ResponseCache(teacher.cache_dir)
    reported = [cache.get(request_key(request_for(teacher, m)))["model"] for m in MSGS[:3]]
    assert reported == ["fake-judge-2025-01-01", "other-model", "fake-judge"]
    warned = [r.getMessage() for r in caplog.records if "answered as model" in r.getMessage()]
    assert len(warned) == 1 and "'other-model'" in warned[0]


def test_self_hosted_teachers_are_keyed_by_their_weights(tmp_path):
    """The same served name with other weights never shares answers; the local server and the
    offline engines share them for the same weights; API teachers are keyed by name."""
    msgs = MSGS[0]
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"weights")

    def key(*overrides):
        return request_key(request_for(load_config(list(overrides)).teacher, msgs))

    embedded, engines = key(), key("teacher=vllm_engines")
    mine = key(f"teacher.checkpoint={ckpt}")
    assert embedded == engines and mine != embedded
    assert key("teacher=vllm_engines", f"teacher.checkpoint={ckpt}") == mine
    _identity.cache_clear()
    os.utime(ckpt / "model.safetensors", ns=(1, 1))  # retrained in place
    assert key(f"teacher.checkpoint={ckpt}") not in (mine, embedded)
    api = request_for(load_config(["teacher=openai", "teacher.model=SmolLM2-135M-Instruct"]).teacher,
                      msgs)
    assert "checkpoint" not in api


def test_the_utilization_ceiling_is_what_the_drain_of_the_slowest_answers_leaves():
    """The scale benchmark compares the client's utilization with a client that never leaves
    a slot empty: equal latencies fill every slot to the end; one slow answer at the end is
    finished alone."""
    from bench.slow_api import ceiling, utilization

    assert ceiling([1.0] * 8, 4) == 1.0
    assert ceiling([1.0] * 7 + [5.0], 4) == 12 / (4 * 6)  # the last answer alone for 5 s
    assert ceiling([5.0] + [1.0] * 7, 4) == 12 / (4 * 5)  # sent first, it overlaps the rest
    records = [["m", 0.0, 1.0], ["m", 0.0, 2.0], ["other", 0.0, 9.0]]
    got = utilization(records, "m", 2)
    assert (got["requests"], got["utilization"], got["ceiling"]) == (2, 0.75, 0.75)
