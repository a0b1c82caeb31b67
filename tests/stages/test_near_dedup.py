"""Near-duplicate verification without a cluster: shingles, exact Jaccard, which candidate
pairs are joined."""

from __future__ import annotations

import pytest

from stages.near_dedup import clusters, jaccard, shingles


def test_shingles_are_word_n_grams_and_a_short_text_is_one_shingle():
    assert shingles("a b c d e f", 5) == {b"a b c d e", b"b c d e f"}
    assert shingles("a b c d e", 5) == {b"a b c d e"}
    assert shingles("a b c", 5) == {b"a b c"}
    assert len(shingles(" ".join(f"w{i}" for i in range(10)), 5)) == 6


def test_jaccard_is_intersection_over_union():
    a, b = {b"1", b"2", b"3", b"4"}, {b"3", b"4", b"5"}
    assert jaccard(a, b) == pytest.approx(2 / 5)
    assert jaccard(a, a) == 1.0 and jaccard(a, {b"9"}) == 0.0
    assert jaccard({b"1"}, a) == pytest.approx(1 / 4), "containment is not similarity"


def test_only_candidates_at_the_threshold_are_joined_unless_verification_is_off():
    base = [f"w{i}" for i in range(40)]
    sets = {"x": shingles(" ".join(base), 5),
            "near": shingles(" ".join(base[:39] + ["other"]), 5),  # J = 35/37
            "half": shingles(" ".join(base[:33] + [f"v{i}" for i in range(7)]), 5)}  # J = 0.67
    assert jaccard(sets["x"], sets["near"]) > 0.85 > jaccard(sets["x"], sets["half"]) > 0.55
    edges = [("0|x", "1|near"), ("0|x", "2|half")]
    uf = clusters(edges, sets, 0.85)
    assert uf.find("1|near") == "0|x" and uf.find("2|half") == "2|half"
    everything = clusters(edges, sets, None)
    assert everything.find("2|half") == "0|x"
