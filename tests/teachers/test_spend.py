"""The spend meter and the progress line: arithmetic every worker's requests go through."""

from __future__ import annotations

import pytest

from pipeline.settings import load_config
from pipeline.teachers.prices import price_usd
from pipeline.teachers.progress import clock, describe
from pipeline.teachers.requests import prompt_tokens, tokenizer_name
from pipeline.teachers.spend import Meter

from conftest import chatml


def test_a_request_waits_while_requests_in_flight_may_leave_room_and_is_refused_after():
    meter = Meter(1.0)
    assert meter.admit("teacher", 0.4) == "send"
    assert meter.admit("teacher", 0.4) == "send"
    assert meter.admit("teacher", 0.4) == "wait", "0.4 + 0.4 in flight: the third may not fit"
    meter.settle("teacher", 0.4, 0.1, 100, 50, False, 0)
    assert meter.admit("teacher", 0.4) == "send", "an answer cheaper than its worst case frees room"
    meter.settle("teacher", 0.4, 0.4, 100, 50, False, 1)
    meter.settle("teacher", 0.4, 0.4, 100, 50, False, 0)
    assert meter.spent == pytest.approx(0.9)
    assert meter.admit("teacher", 0.4) == "refuse", "0.9 spent: 0.4 more can never fit"
    s = meter.snapshot()["stages"]["teacher"]
    assert (s["sent"], s["answered"], s["refused"], s["retries"]) == (3, 3, 1, 1)


def test_without_a_cap_everything_goes_and_is_counted():
    meter = Meter(None)
    assert all(meter.admit("bootstrap", 100.0) == "send" for _ in range(5))
    meter.note_cached("bootstrap", 7)
    assert meter.snapshot()["stages"]["bootstrap"]["cached"] == 7


def test_batch_prices_are_half():
    sync = load_config(["teacher=openai", "teacher.model=o3", "teacher.price_input_per_mtok=2",
                        "teacher.price_output_per_mtok=8"]).teacher
    batch = load_config(["teacher=openai_batch", "teacher.model=o3",
                         "teacher.price_input_per_mtok=2",
                         "teacher.price_output_per_mtok=8"]).teacher
    assert price_usd(sync, 1_000_000, 1_000_000) == pytest.approx(10.0)
    assert price_usd(batch, 1_000_000, 1_000_000) == pytest.approx(5.0)


def test_the_progress_line_has_rates_errors_cost_and_projection():
    stage = {"sent": 10, "answered": 9, "errors": 1, "retries": 3, "refused": 2, "cached": 0,
             "prompt_tokens": 9000, "completion_tokens": 1000, "cost_usd": 0.5,
             "first_sent": 100.0, "last_done": 105.0}
    line = describe(stage, expected=40, cap=3.0, now=105.0)
    assert line == ("10/40 asked, 2.0 req/s, 2,000 tok/s, 1 errors, 3 retries, $0.50 "
                    "(projected $2.00), cap $3.00, 2 not sent (cost cap), ETA 14s")
    # 28 left at 2 req/s; nothing left, no ETA
    assert "ETA" not in describe(stage | {"answered": 37, "refused": 2}, expected=40, cap=None,
                                 now=105.0)
    assert clock(3725) == "1h02m" and clock(247) == "4m07s" and clock(12.4) == "12s"


def test_prompt_tokens_are_counted_with_the_teachers_tokenizer_where_known():
    messages = [{"role": "user", "content": "Which answer is better, and why? " * 20}]
    local = load_config([]).teacher
    remote = load_config(["teacher=openai", "teacher.model=o3"]).teacher
    assert tokenizer_name(remote) is None
    assert tokenizer_name(load_config(["teacher=vllm_engines"]).teacher) == tokenizer_name(local)
    assert prompt_tokens(remote, messages) == len(messages[0]["content"]) // 4
    assert tokenizer_name(local) is not None
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_name(local))
    expected = len(tok.encode(chatml(messages, True), add_special_tokens=False))
    assert prompt_tokens(local, messages) == expected != len(messages[0]["content"]) // 4


def test_after_ctrl_c_nothing_more_is_sent_and_what_is_in_flight_settles():
    meter = Meter(None)
    assert meter.admit("teacher", 0.1) == "send"
    meter.stop()
    assert meter.admit("teacher", 0.1) == "stop"
    meter.settle("teacher", 0.1, 0.05, 10, 5, False, 0)
    assert meter.spent == pytest.approx(0.05)


class _ActorLike:
    """A Meter called the way the build calls its actor (`meter.stop.remote()`)."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.stop = type("m", (), {"remote": staticmethod(meter.stop)})


@pytest.mark.parametrize("second_ctrl_c", [False, True])
def test_ctrl_c_stops_the_meter_before_waiting_for_the_answers_in_flight(monkeypatch,
                                                                          second_ctrl_c):
    """The drain after Ctrl-C: no new request may go out while it waits (the meter says "stop"
    first), the wait is bounded, and a second Ctrl-C ends it at once."""
    import pipeline.teachers.answering as answering

    meter = Meter(None)
    waited = []

    def wait(calls, num_returns, timeout):
        waited.append((meter.admit("teacher", 0.1), len(calls), num_returns, timeout))
        if second_ctrl_c:
            raise KeyboardInterrupt
        return calls, []

    monkeypatch.setattr(answering.ray, "wait", wait)
    answering.interrupted([_ActorLike(meter)], ["call-1", "call-2"])
    assert waited == [("stop", 2, 2, answering.DRAIN_S)]


def test_a_chained_stage_s_total_grows_with_what_the_chains_queue(caplog, monkeypatch):
    """Pass 2's requests are found while pass 1 runs: its line counts what the chains queued,
    is not called finished when it has caught up with them, and has its last line at close."""
    import io

    import ray

    from pipeline.teachers.progress import TeacherProgress

    monkeypatch.setattr(ray, "get", lambda value, timeout=None: value)
    meter = Meter(None)
    progress = TeacherProgress({"teacher2": _Snapshots(meter)}, io.StringIO(), interval_s=60)
    progress.expect("bootstrap", "teacher2", "judge", 0, chained=True)
    meter.note_queued("bootstrap", 2)
    assert meter.admit("bootstrap", 0.0) == "send"
    meter.settle("bootstrap", 0.0, 0.0, 10, 5, False, 0)
    with caplog.at_level("WARNING", logger="rubricforge"):
        progress._poll()
        progress._draw({})  # 1 of 2 queued
        meter.note_queued("bootstrap", 1)
        for _ in range(2):
            assert meter.admit("bootstrap", 0.0) == "send"
            meter.settle("bootstrap", 0.0, 0.0, 10, 5, False, 0)
        progress._poll()
        progress._draw({"bootstrap": float("inf")})  # caught up: not logged, not finished
        assert "bootstrap" not in progress.finished
        progress.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("bootstrap: teacher judge: 1/2 asked")
    assert lines[-1].startswith("bootstrap: teacher judge: 3/3 asked") and len(lines) == 2


class _Snapshots:
    """A meter as the progress display polls it (`meter.snapshot.remote()` under Ray)."""

    def __init__(self, meter: Meter) -> None:
        self.snapshot = self
        self.meter = meter

    def remote(self) -> dict:
        return self.meter.snapshot()
