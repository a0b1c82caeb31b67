"""The Batch API backend against a loopback play of the Files and Batches endpoints: jobs within
the API's limits, retries in new jobs, jobs picked up after a stop, never a synchronous request."""

from __future__ import annotations

import json

import pytest
from batch_stop import stop_while_a_job_waits

from pipeline.settings import load_config
from pipeline.teachers.batch_jobs import OpenAIJobs, answer_in_jobs
from pipeline.teachers.cache import ResponseCache, request_key
from pipeline.teachers.prices import price_usd
from pipeline.teachers.requests import request_for, uncached
from pipeline.teachers.spend import Meter

from fake_openai import FakeBatchAPI, completion

MSGS = [[{"role": "user", "content": f"q{i}"}] for i in range(10)]


def _batch_teacher(tmp_path, url: str, **extra: str):
    return load_config(["teacher=openai_batch", "teacher.model=fake-judge",
                        f"teacher.cache_dir={tmp_path}/cache", f"teacher.base_url={url}",
                        "teacher.batch_poll_s=0.01", "teacher.max_attempts=3",
                        "teacher.price_input_per_mtok=2", "teacher.price_output_per_mtok=8",
                        *(f"teacher.{k}={v}" for k, v in extra.items())]).teacher


def _echo(body, n):
    return completion(f"trace for {body['messages'][0]['content']}")


def _cached(cfg, msgs) -> list[str]:
    cache = ResponseCache(cfg.cache_dir)
    return [cache.get(request_key(request_for(cfg, m)))["content"] for m in msgs]


def test_failed_lines_go_again_in_a_new_job_at_half_price(tmp_path):
    def reply(body, n):  # the first job's every third line fails
        return (500, json.dumps({"error": {"message": "busy"}})) if n <= 10 and n % 3 == 0 \
            else _echo(body, n)

    meter = Meter(None)
    with FakeBatchAPI(reply) as api:
        cfg = _batch_teacher(tmp_path, api.base_url)
        answered = answer_in_jobs(uncached(cfg, MSGS), cfg, "teacher", meter)
        assert len(api.jobs) == 2 and api.lines_seen == 13, "3 failed lines, sent again once"
        assert not uncached(cfg, MSGS), "a warm rerun has nothing to submit"
    assert set(answered.values()) == {None} and len(answered) == 10
    assert _cached(cfg, MSGS) == [f"trace for q{i}" for i in range(10)]
    assert set(api.answered.values()) == {1}
    assert meter.spent == pytest.approx(10 * price_usd(cfg, 11, 7))
    assert price_usd(cfg, 11, 7) == pytest.approx((11 * 2 + 7 * 8) / 1e6 / 2), "half the price"
    assert not list((tmp_path / "cache" / "batches").glob("*.json")), "finished jobs forgotten"


@pytest.mark.parametrize(("limit", "value", "sizes"), [
    ("max_lines", 4, [4, 4, 2]),
    # each line is ~280 bytes: three fit in 900
    ("max_bytes", 900, [3, 3, 3, 1]),
])
def test_a_pass_goes_as_few_jobs_as_the_api_s_limits_allow(tmp_path, monkeypatch, limit, value,
                                                           sizes):
    monkeypatch.setattr(OpenAIJobs, limit, value)
    with FakeBatchAPI(_echo) as api:
        cfg = _batch_teacher(tmp_path, api.base_url)
        answered = answer_in_jobs(uncached(cfg, MSGS), cfg, "teacher", None)
        files = [api.files[j["input_file_id"]] for j in api.jobs.values()]
    assert [len(f.splitlines()) for f in files] == sizes
    if limit == "max_bytes":
        assert all(len(f.encode()) <= value for f in files)
    assert set(answered.values()) == {None} and api.lines_seen == 10
    assert _cached(cfg, MSGS) == [f"trace for q{i}" for i in range(10)]


def test_under_a_cost_cap_what_waits_for_room_goes_in_the_next_job_and_the_rest_is_refused(
        tmp_path):
    """Each request reserves its worst case (1,024 tokens out) until its job is paid for, far
    less: with room for four and a half, jobs of 4, 4 and 2 go one after the other, never
    hung on room that only a submitted job can free."""
    from pipeline.teachers.requests import worst_case

    with FakeBatchAPI(_echo) as api:
        probe = _batch_teacher(tmp_path, api.base_url)
        worst = worst_case(probe, MSGS[0])[1]
        cfg = _batch_teacher(tmp_path, api.base_url, max_cost_usd=4.5 * worst)
        meter = Meter(cfg.max_cost_usd)
        answered = answer_in_jobs(uncached(cfg, MSGS), cfg, "teacher", meter)
        sizes = [len(api.files[j["input_file_id"]].splitlines()) for j in api.jobs.values()]
        assert sizes == [4, 4, 2] and set(answered.values()) == {None}
        assert meter.spent == pytest.approx(10 * price_usd(cfg, 11, 7))
        below = _batch_teacher(tmp_path / "b", api.base_url, max_cost_usd=0.5 * worst)
        refused = answer_in_jobs(uncached(below, MSGS), below, "teacher", None)
        assert len(api.jobs) == 3, "nothing fits: no job"
    assert all(e.startswith("cost_cap") for e in refused.values()) and len(refused) == 10


def test_a_stopped_build_picks_up_its_batch_job_instead_of_paying_again(tmp_path):
    """The first run is stopped while its job runs; the job id it saved brings the second to
    the same job, so the API sees one upload and one job."""
    with FakeBatchAPI(lambda body, n: completion("ok")) as api:
        cfg = _batch_teacher(tmp_path, api.base_url)
        requests = uncached(cfg, MSGS[:6])
        api.stalled = True
        stop_while_a_job_waits(OpenAIJobs, cfg, requests)
        api.stalled = False
        answered = answer_in_jobs(uncached(cfg, MSGS[:6]), cfg, "teacher", None)
        assert (len(api.files), len(api.jobs)) == (2, 1), "one upload, one job, one output"
    assert set(answered.values()) == {None} and _cached(cfg, MSGS[:6]) == ["ok"] * 6


def test_the_backend_answers_a_pass_from_its_dataset_and_never_sends_one_by_one(tmp_path,
                                                                                local_ray):
    """Through the backend, as the build asks it: the pass's Ray dataset in jobs. Its stage's
    client gets no endpoint, so a request the jobs did not answer is a row's error, never a
    synchronous request at the full price."""
    import ray

    from pipeline.engine.batches import request_table
    from pipeline.engine.stage import Resources
    from pipeline.teachers.backends import backend_of
    from pipeline.teachers.client import TeacherClient

    with FakeBatchAPI(_echo) as api:
        cfg = _batch_teacher(tmp_path, api.base_url)
        backend = backend_of(cfg)
        endpoints = backend.endpoints(cfg, 10, None)
        requests = uncached(cfg, MSGS[:8])
        ds = ray.data.from_arrow(request_table(requests)).repartition(3)
        answered = backend.answer(ds, 8, cfg, "teacher", None, endpoints, Resources())
        results = TeacherClient(cfg, endpoints, answered=answered).complete_all(MSGS)
        assert len(api.jobs) == 1, "one job for the pass"
    assert endpoints == [] and answered == dict.fromkeys(requests)
    assert [r.content for r in results[:8]] == [f"trace for q{i}" for i in range(8)]
    assert [r.error.split(":")[0] for r in results[8:]] == ["not asked"] * 2
