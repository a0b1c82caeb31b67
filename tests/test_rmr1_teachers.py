"""RM-R1's own teachers as its authors ran them, on the sample: pass 1 on Claude through
Anthropic's Message Batches, pass 2 on o3 through OpenAI's Batch API, both played on loopback
by servers the real SDKs talk to. Every row accounted for, a rerun sends nothing and writes the
same bytes, and what the run says it spent is the fakes' usage at the batch and cache rates."""

from __future__ import annotations

import json
import re

import pytest
from fake_anthropic import FakeAnthropic

from bench import slow_api
from pipeline.plan import make_plan
from pipeline.settings import load_config

from fake_openai import FakeBatchAPI

CLAUDE, O3 = "claude-3-7-sonnet-20250219", "o3"


class ClaudeJudge:
    """Answers a Messages request as the scale bench's judge does, reporting the usage a
    Claude batch would: the system prompt written to the prompt cache by the first request and
    read from it by every later one. Keeps each answer's usage to price it independently."""

    def __init__(self) -> None:
        self.usage: list[dict[str, int]] = []

    def __call__(self, params: dict, n: int) -> tuple:
        system = "".join(b["text"] for b in params.get("system", []))
        text = "\n".join([system, *(m["content"] for m in params["messages"])])
        shared = len(system) // 4
        usage = {"input_tokens": len(text) // 4 - shared, "output_tokens": 40,
                 "cache_read_input_tokens": shared if self.usage else 0,
                 "cache_creation_input_tokens": 0 if self.usage else shared}
        self.usage.append(usage)
        verdict = "AB"[len(self.usage) % 2]
        return 200, json.dumps({
            "id": f"msg_{n}", "type": "message", "role": "assistant", "model": params["model"],
            "content": [{"type": "text", "text": slow_api.trace(verdict, text)}],
            "stop_reason": "end_turn", "stop_sequence": None, "usage": usage})

    def cost(self) -> float:
        """Claude 3.7 Sonnet's listed prices (conf/prices.yaml), halved for batches."""
        return sum(u["input_tokens"] * 3 + u["cache_read_input_tokens"] * 0.3
                   + u["cache_creation_input_tokens"] * 3.75 + u["output_tokens"] * 15
                   for u in self.usage) / 1e6 / 2


def build(tmp_path, name: str, claude_url: str, o3_url: str) -> dict:
    from pipeline import build as b

    cfg = load_config([
        f"output.dir={tmp_path / name}", f"teacher.cache_dir={tmp_path / 'cache'}",
        "teacher=anthropic_batch", f"teacher.model={CLAUDE}", "teacher.max_tokens=8192",
        f"teacher.base_url={claude_url}", "teacher.batch_poll_s=0.05",
        "teacher2=openai_batch", f"teacher2.model={O3}", f"teacher2.base_url={o3_url}",
        "teacher2.batch_poll_s=0.05"])
    manifest, _, _ = b.run_build(cfg, make_plan(cfg))
    return manifest


@pytest.mark.e2e
def test_claude_batches_then_o3_batches_account_for_every_row_and_cost_what_the_usage_says(
        tmp_path, caplog, local_ray):
    """Both builds share one Ray, as builds joined to a cluster do."""
    judge = ClaudeJudge()
    with FakeAnthropic(judge) as claude, FakeBatchAPI(
            lambda body, n: (200, slow_api.answer(body, 40))) as o3:
        first = build(tmp_path, "first", claude.base_url, o3.base_url)
        spent = [r.getMessage() for r in caplog.records if " spent" in r.getMessage()]
        asked = (len(claude.requests), o3.lines_seen)
        caplog.clear()
        again = build(tmp_path, "again", claude.base_url, o3.base_url)
        assert (len(claude.requests), o3.lines_seen) == asked, "a rerun sends nothing"
        assert not [r for r in caplog.records if "batch job" in r.getMessage()]
    assert first["balanced"] and again["balanced"]
    assert again["files"] == first["files"], "the same bytes from the same cache"
    calls = {c["call"]: c for c in first["teacher"]["by_call"]}
    assert calls["pass 1"]["model"] == CLAUDE and calls["pass 1"]["requests"] == asked[0]
    assert calls["pass 2"]["model"] == O3 and calls["pass 2"]["requests"] == asked[1] > 0
    # the system prompt read from the cache by every Claude request after the first
    reads = sum(u["cache_read_input_tokens"] for u in judge.usage)
    assert calls["pass 1"]["cache_read_tokens"] == reads > 0
    # what the run said it spent on Claude: its usage at half the price, cache at cache rates
    (claude_line,) = [s for s in spent if s.startswith("teacher ")]
    dollars = float(re.search(r"\$([0-9.]+) spent", claude_line).group(1))
    assert dollars == pytest.approx(judge.cost(), abs=1e-4)
    assert f"{reads:,} of " in claude_line and "read from the provider's prompt cache" in claude_line
    (o3_line,) = [s for s in spent if s.startswith("teacher2 ")]
    o3_tokens = sum(json.loads(line)["response"]["body"]["usage"]["prompt_tokens"] * 2
                    + 40 * 8 for f in o3.files.values() for line in f.splitlines()
                    if '"response"' in line) / 1e6 / 2
    assert float(re.search(r"\$([0-9.]+) spent", o3_line).group(1)) == pytest.approx(
        o3_tokens, abs=1e-4)
