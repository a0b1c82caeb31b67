"""`rubricforge cache stats|export|prune`: what the teacher cache holds, and cleaning it safely."""

from __future__ import annotations

import json
import os
import time

from pipeline.cli import main
from pipeline.teachers import cache
from pipeline.teachers.cache import ResponseCache

RECORD = {"content": "<answer>[[A]]</answer>", "finish_reason": "stop", "prompt_tokens": 100,
          "completion_tokens": 20, "latency_s": 0.5}


def filled(tmp_path, n=3):
    store = ResponseCache(tmp_path)
    keys = [f"{i:02d}" + "ab" * 31 for i in range(n)]
    for k in keys:
        store.put(k, RECORD)
    return store, keys


def test_stats_and_export(tmp_path, capsys):
    _, keys = filled(tmp_path)
    (tmp_path / "00" / ".tmp-crash.json").write_text("{")
    st = cache.stats(tmp_path)
    assert (st["responses"], st["prompt_tokens"], st["completion_tokens"]) == (3, 300, 60)
    assert st["leftover_temp_files"] == 1 and st["unreadable"] == 0
    assert main(["cache", "stats", "--dir", str(tmp_path)]) == 0
    assert "3 answers" in capsys.readouterr().out
    out = tmp_path / "export.jsonl"
    assert main(["cache", "export", "--dir", str(tmp_path), "--out", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["key"] for x in lines] == sorted(keys) and lines[0]["content"] == RECORD["content"]


def test_prune_deletes_only_what_no_build_used_lately(tmp_path, capsys):
    store, keys = filled(tmp_path)
    old = time.time() - 40 * 86400
    for k in keys:
        os.utime(store._path(k), (old, old))
    assert store.get(keys[0]) == RECORD  # a build read it: it counts as used now
    assert main(["cache", "prune", "--dir", str(tmp_path), "--older-than-days", "30",
                 "--dry-run"]) == 0
    assert "would delete 2 files" in capsys.readouterr().out
    assert all(k in store for k in keys)
    assert main(["cache", "prune", "--dir", str(tmp_path), "--older-than-days", "30"]) == 0
    assert keys[0] in store and keys[1] not in store and keys[2] not in store


def test_cache_commands_say_what_is_missing(tmp_path, capsys):
    assert main(["cache", "stats", "--dir", str(tmp_path / "nowhere")]) == 1
    assert main(["cache", "prune", "--dir", str(tmp_path)]) == 2
    assert main(["cache", "export", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no cache at" in err and "--older-than-days" in err and "--out" in err
