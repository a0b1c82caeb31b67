"""Exact and near-duplicate removal and prompt grouping on a real (small) Ray: what is
removed, what is kept, that every removed row says what it duplicates, and which pairs share a
prompt group."""

from __future__ import annotations

import random

import pytest

from pipeline.engine.schema import ALIVE, DEDUPLICATED
from stages.exact_dedup import ExactDedup, ExactDedupParams
from stages.near_dedup import NearDedup, NearDedupParams, bands_rows

from conftest import pair, run_stage

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("local_ray")]
WORDS = [f"word{i}" for i in range(400)]


def text(seed: int, n: int = 60) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


def test_exact_dedup_on_normalized_prompts_keeps_by_source_priority():
    rows = [pair("b", 0, "What is  the capital of France?"),
            pair("a", 0, "what is the capital of FRANCE?", chosen="other answer"),
            pair("a", 1, "A different question?")]
    got = run_stage(ExactDedup, ExactDedupParams(key="prompt"), rows)
    assert got[("a", 1)]["outcome"] == ALIVE
    assert got[("a", 0)]["outcome"] == ALIVE, "unlisted sources are ranked by name: a before b"
    dup = got[("b", 0)]
    assert (dup["outcome"], dup["reason"], dup["dup_of"]) == (DEDUPLICATED, "exact_dup",
                                                             rows[1]["pair_id"])
    assert "a#0" in dup["detail"] and dup["decided_by"] == "exact_dedup"
    got = run_stage(ExactDedup, ExactDedupParams(key="prompt"), rows,
              ["recipe.source_priority=[b,a]"])
    assert got[("b", 0)]["outcome"] == ALIVE and got[("a", 0)]["outcome"] == DEDUPLICATED


def test_exact_dedup_on_the_whole_pair_keeps_different_answers():
    rows = [pair("a", 0, "Same prompt", chosen="x"), pair("a", 1, "Same prompt", chosen="y"),
            pair("a", 2, "Same prompt", chosen="x")]
    got = run_stage(ExactDedup, ExactDedupParams(key="pair"), rows)
    assert [got[("a", i)]["outcome"] for i in range(3)] == [ALIVE, ALIVE, DEDUPLICATED]
    # the two kept share a prompt: one group, named by the first in keep order
    first = min(rows[:2], key=lambda r: r["pair_id"])["pair_id"]
    assert {got[("a", i)]["prompt_group"] for i in range(2)} == {first}


def test_exact_dedup_groups_equal_prompts_across_sources_and_leaves_others_alone():
    rows = [pair("a", 0, "Same  prompt"), pair("b", 3, "same prompt", chosen="z"),
            pair("a", 1, "Another prompt")]
    got = run_stage(ExactDedup, ExactDedupParams(), rows)
    assert all(r["outcome"] == ALIVE for r in got.values())
    assert got[("a", 0)]["prompt_group"] == got[("b", 3)]["prompt_group"] == rows[0]["pair_id"]
    assert got[("a", 1)]["prompt_group"] == rows[2]["pair_id"]


def test_near_dedup_groups_nearly_equal_prompts_and_removes_nothing():
    base = text(11, 80)
    edited = base.split()
    edited[40] = "changed"
    rows = [pair("a", 0, base), pair("a", 1, base, chosen="other"),
            pair("b", 0, " ".join(edited)), pair("b", 1, text(12))]
    # as exact_dedup leaves them: a#1 follows a#0 (same prompt); b#0 and b#1 stand alone
    for r in rows:
        r["prompt_group"] = rows[0]["pair_id"] if r is rows[1] else r["pair_id"]
    got = run_stage(NearDedup, NearDedupParams(), rows)
    assert all(r["outcome"] == ALIVE for r in got.values())
    group = {got[k]["prompt_group"] for k in (("a", 0), ("a", 1), ("b", 0))}
    assert group == {min(rows[0]["pair_id"], rows[2]["pair_id"])}
    assert got[("b", 1)]["prompt_group"] == rows[3]["pair_id"]


def test_near_dedup_finds_light_edits_and_keeps_the_rest():
    base = text(1, 80)
    edited = base.split()
    edited[40] = "changed"  # one word of 80 changes 5 of 76 shingles: Jaccard 71/81 ~ 0.88
    half = base.split()[:40] + text(2, 40).split()
    rows = [pair("a", 0, base), pair("b", 0, " ".join(edited)), pair("a", 1, " ".join(half)),
            pair("a", 2, text(3)), pair("b", 1, base.upper())]
    got = run_stage(NearDedup, NearDedupParams(mode="remove"), rows)
    assert got[("a", 0)]["outcome"] == ALIVE
    for key in (("b", 0), ("b", 1)):
        assert got[key]["outcome"] == DEDUPLICATED and got[key]["reason"] == "near_dup"
        assert got[key]["dup_of"] == rows[0]["pair_id"] and "a#0" in got[key]["detail"]
    assert got[("a", 1)]["outcome"] == ALIVE, "half the text shared is not a near duplicate"
    assert got[("a", 2)]["outcome"] == ALIVE


def test_near_dedup_clusters_chains_to_one_keeper():
    words = text(5, 80).split()
    chain = []
    for i in range(4):  # each differs from the previous by one more word
        w = list(words)
        for j in range(i):
            w[10 + 20 * j] = f"edit{j}"
        chain.append(pair("a", i, " ".join(w)))
    got = run_stage(NearDedup, NearDedupParams(threshold=0.8, mode="remove"), chain)
    assert got[("a", 0)]["outcome"] == ALIVE
    assert all(got[("a", i)]["outcome"] == DEDUPLICATED for i in (1, 2, 3))


@pytest.mark.parametrize("threshold", [0.7, 0.8, 0.85, 0.9, 0.95])
def test_lsh_bands_find_pairs_at_the_threshold(threshold):
    bands, rows = bands_rows(threshold, 128)
    assert bands * rows <= 128
    assert 1 - (1 - threshold**rows) ** bands >= 0.95
    assert 1 - (1 - 0.3**rows) ** bands < 0.1, "dissimilar pairs are rarely candidates"


def test_bad_settings_are_refused():
    assert NearDedupParams(key="answer").check()
    assert NearDedupParams(threshold=0).check()
    assert NearDedupParams(mode="drop").check()
    assert "key=prompt" in NearDedupParams(key="pair").check()
    assert NearDedupParams(key="pair", mode="remove").check() is None
    assert ExactDedupParams(key="x").check()


def test_normalized_text_folds_case_unicode_and_every_kind_of_space():
    import re
    import sys
    import unicodedata

    from pipeline.rules.keys import normalize

    spaces = "".join(c for c in map(chr, range(sys.maxunicode)) if re.fullmatch(r"\s", c))
    assert normalize(f"{spaces}Stra\u00dfe{spaces}ﬁne  ＡＢＣ\tx{spaces}") == "strasse fine abc x"
    for text in ["  Hello,\u00a0World \n", "Ｔｅｓｔ\u2003ｉｔ", "plain ascii\ttext\r\n", ""]:
        reference = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).casefold()).strip()
        assert normalize(text) == reference


def test_prompt_and_pair_texts_normalized_together_equal_each_normalized_alone():
    """exact_dedup normalizes the prompt once for both of its keys: the shortcut must give
    the same texts, whatever sits at the joins (marks that combine, spaces, folded letters,
    empty turns)."""
    from pipeline.rules.keys import prompt_and_pair_text, row_text

    pieces = ["a", "B", " ", "\n", "\t", "\u00a0", "\u0301", "\u2003", "ﬁ", "Σ", "ß", "İ",
              "\u3000", "x\u0308", "\u1e9b\u0323", "", "Ａ", "①"]
    rng = random.Random(7)

    def some() -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))

    for _ in range(20_000):
        row = {"prompt": [{"role": "user", "content": some()} for _ in range(rng.randint(1, 3))],
               "chosen": [{"content": some()}], "rejected": [{"content": some()}]}
        assert prompt_and_pair_text(row) == (row_text(row, "prompt"), row_text(row, "pair"))


def test_bands_are_kept_by_text_and_read_back_without_computing_minhash(tmp_path, monkeypatch):
    import pyarrow as pa
    from datasketch import MinHash

    import pipeline.engine.memo as memo
    import stages.near_dedup as near

    rows = [pair("a", i, text(i)) | {"pair_index": 0, "prompt_group": None} for i in range(5)]
    batch = pa.Table.from_pylist(rows)
    kept = NearDedupParams(cache_dir=str(tmp_path))
    b, r = bands_rows(kept.threshold, kept.num_perm)
    fresh = near._signatures(batch, NearDedupParams(cache_dir=None), b, r, [])
    assert near._signatures(batch, kept, b, r, []).equals(fresh), "same bands through the memo"
    (folder,) = tmp_path.iterdir()
    assert len(list(folder.glob("*.arrow"))) == 1

    def never(*_a, **_k):
        raise AssertionError("MinHash computed for a text whose bands are kept")

    monkeypatch.setattr(memo, "_OPEN", {})  # as a new worker process: read from disk
    monkeypatch.setattr(MinHash, "bulk", never)
    assert near._signatures(batch, kept, b, r, []).equals(fresh)
    # other settings are another folder: nothing of these is reused for them
    with pytest.raises(AssertionError, match="MinHash computed"):
        near._signatures(batch, NearDedupParams(cache_dir=str(tmp_path), ngram=3), b, r, [])
    monkeypatch.undo()
    # a new text is computed and kept beside the rest; an unreadable segment is computed again
    more = pa.Table.from_pylist([*rows, pair("a", 9, text(9)) | {"pair_index": 0, "prompt_group": None}])
    assert near._signatures(more, kept, b, r, []).slice(0, 5).equals(fresh)
    for f in folder.glob("*.arrow"):
        f.write_bytes(b"not arrow")
    monkeypatch.setattr(memo, "_OPEN", {})
    again = near._signatures(more, kept, b, r, [])
    assert again.equals(near._signatures(more, NearDedupParams(cache_dir=None), b, r, []))
