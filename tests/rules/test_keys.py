"""Keys the stages share: which of two duplicates is kept, seeded orders, row names."""

from __future__ import annotations

from pipeline.rules.keys import keep_rank, rank_key, row_name


def row(source, index, pair_id="p", pair_index=0):
    return {"source": source, "source_index": index, "pair_id": pair_id, "pair_index": pair_index}


def test_duplicates_keep_listed_sources_in_order_then_the_others_by_name():
    rows = [row("zeta", 0), row("alpha", 0), row("listed_second", 0), row("listed_first", 0)]
    kept_first = sorted(rows, key=lambda r: keep_rank(r, ["listed_first", "listed_second"]))
    assert [r["source"] for r in kept_first] == ["listed_first", "listed_second", "alpha", "zeta"]
    # within a source: the smallest pair_id, then the source's own row order, then the pair
    same = [row("s", 5, "b"), row("s", 9, "a", 2), row("s", 9, "a", 1), row("s", 3, "a")]
    assert [(r["source_index"], r["pair_index"]) for r in sorted(same, key=lambda r: keep_rank(
        r, []))] == [(3, 0), (9, 1), (9, 2), (5, 0)]


def test_seeded_orders_depend_on_the_seed_and_nothing_else():
    assert rank_key(1, "split", "p", 3) == rank_key(1, "split", "p", 3)
    assert len({rank_key(seed, "split", "p", 3) for seed in range(5)}) == 5
    assert rank_key(1, "split", "p", 3) != rank_key(1, "place", "p", 3)


def test_row_names():
    assert row_name("hh_rlhf", 12, None) == row_name("hh_rlhf", 12, 0) == "hh_rlhf#12"
    assert row_name("ultrafeedback", 12, 3) == "ultrafeedback#12.3"
