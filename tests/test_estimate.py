"""What `--estimate` says a build costs, priced without a price typed, and what the batch
discount and the prompt cache take off the list price (no Ray: the pricing alone; the e2e
tests run the whole estimate)."""

from __future__ import annotations

import pytest

from pipeline.estimate import Line, _cost, savings, shared_prefix
from pipeline.settings import load_config

CLAUDE = ["teacher=anthropic_batch", "teacher.model=claude-3-7-sonnet-20250219"]


def test_a_claude_batch_is_priced_from_the_table_at_half_the_list_price():
    t = load_config(CLAUDE).teacher
    cost, listed, cache_off = _cost(t, 1_000_000, 1_000_000, asked=1000, prefix=410)
    assert listed == pytest.approx(3 + 15)  # $3 in, $15 out per million (conf/prices.yaml)
    assert cost == pytest.approx(9) and cache_off == 0.0, "410 tokens are under Claude's 1,024"


def test_a_shared_prefix_past_the_minimum_is_read_from_the_cache_after_the_first_call():
    t = load_config(CLAUDE).teacher
    prompt = 1000 * 3000  # 1,000 requests of 3,000 prompt tokens, 2,000 of them shared
    cost, listed, cache_off = _cost(t, prompt, 0, asked=1000, prefix=2000)
    full = prompt * 3 / 1e6 / 2
    reads, write = 999 * 2000, 2000
    assert cost == pytest.approx((prompt - reads - write) * 3 / 1e6 / 2
                                 + reads * 0.3 / 1e6 / 2 + write * 3.75 / 1e6 / 2)
    assert cache_off == pytest.approx(full - cost) and cache_off > 0.8 * full * 2 / 3
    off = load_config([*CLAUDE, "teacher.cache_prompt=false"]).teacher
    assert _cost(off, prompt, 0, asked=1000, prefix=2000)[2] == 0.0, "Claude caches only marks"


def test_a_model_without_prices_is_unknown_not_free():
    t = load_config(["teacher=openai", "teacher.model=my-judge"]).teacher
    assert _cost(t, 1000, 1000, asked=1) == (None, None, 0.0)


def test_the_estimate_says_where_prices_come_from_and_what_each_saving_takes_off():
    cfg = load_config([*CLAUDE, "teacher2=openai_batch", "teacher2.model=o3"])
    system = cfg.prompt.system
    prefix = shared_prefix(cfg.teacher, system)
    assert 350 < prefix < 500, "the shipped judge instructions: about 410 tokens"
    c1, l1, o1 = _cost(cfg.teacher, 2_000_000, 1_000_000, 1000, prefix)
    c2, l2, o2 = _cost(cfg.teacher2, 500_000, 100_000, 250, prefix)
    lines = [Line("teacher", cfg.teacher.model, 1000, 0, 2_000_000, 1_000_000, c1, False, l1, o1),
             Line("bootstrap", "o3", 250, 0, 500_000, 100_000, c2, True, l2, o2, "teacher2")]
    said = savings({"teacher": cfg.teacher, "teacher2": cfg.teacher2}, lines, system)
    assert said[0].startswith("teacher claude-3-7-sonnet-20250219 (anthropic_batch): prices "
                              "from conf/prices.yaml, checked ")
    assert "list price $21.00, of which the batch discount takes off $10.50 and the prompt " \
           "cache $0.00 (nothing: the judge's instructions" in said[0]
    assert "under the 1,024 tokens claude-3-7-sonnet-20250219 caches at least" in said[0]
    assert said[1].startswith("teacher2 o3 (openai_batch)") and "$1.80, of which the batch " \
        "discount takes off $0.90" in said[1]
