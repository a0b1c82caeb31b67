"""Tokenizers, loaded once per process, for counting tokens as a model counts them.

Used by the token-length caps (the policy's tokenizer) and by the teacher budget, the cost cap
and `build --estimate` (the teacher's tokenizer, where it is public).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.engine import storage
from pipeline.engine.config import ConfigError, expand
from pipeline.engine.memo import key_of, memo_at


def local_model_dir(model_dir: str) -> str:
    """The embedded model's checkpoint (converted on first use): its tokenizer needs no network."""
    from pipeline.teachers.local_model import ensure_checkpoint

    return str(ensure_checkpoint(expand(model_dir)))


@lru_cache(maxsize=8)
def load_tokenizer(name: str, setting: str) -> Any:
    """A Hugging Face tokenizer from a Hub id or directory; `setting` names the config key for
    the one-line error when it cannot be loaded."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{setting}={name}: cannot load it ({first}); give a local directory "
                          "or download it first") from None


def chat_tokens(tok: Any, messages: list[dict[str, str]], generation_prompt: bool) -> int:
    """Tokens of a chat with the model's template applied, as the model reads it."""
    return len(tok.apply_chat_template(messages, tokenize=True, return_dict=False,
                                       add_generation_prompt=generation_prompt))


# Chats rendered and encoded per call. An encoding keeps its tokens, offsets and masks: a
# block of 16,384 chats of ~1.5K tokens encoded at once held 1.9 GB per counting actor (and was
# slower than chunks: 14.0 s against 10.0 s).
COUNT_CHUNK = 256


def render_and_count(tok: Any, chats: list[list[dict[str, str]]],
                     generation_prompt: list[bool]) -> list[int]:
    """`chat_tokens` of many chats: the templates are rendered in Python, the texts encoded a
    chunk per call to the Rust tokenizer (several threads, no per-row Python objects)."""
    counts: list[int] = []
    for start in range(0, len(chats), COUNT_CHUNK):
        texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=g)
                 for m, g in zip(chats[start:start + COUNT_CHUNK],
                                 generation_prompt[start:start + COUNT_CHUNK], strict=True)]
        counts += _encode(tok, texts)
    return counts


def chats_tokens(tokenizer: Callable[[], Any], chats: list[list[dict[str, str]]],
                 generation_prompt: list[bool], cache: CountCache | None = None) -> list[int]:
    """`render_and_count` of many chats, or their counts read from `cache` when these very
    chats were counted before: then the tokenizer (`tokenizer()` loads it) is not even loaded."""
    def count(at: list[int]) -> list[int]:
        return render_and_count(tokenizer(), [chats[i] for i in at],
                                [generation_prompt[i] for i in at])

    if cache is None:
        return count(list(range(len(chats))))
    return cache.counts([chat_key(c, g) for c, g in zip(chats, generation_prompt, strict=True)],
                        count)


def texts_tokens(tokenizer: Callable[[], Any], texts: list[str],
                 cache: CountCache | None = None) -> list[int]:
    """Tokens of plain texts (no chat template, no special tokens): an answer's own length."""
    def count(at: list[int]) -> list[int]:
        tok = tokenizer()
        return [n for start in range(0, len(at), COUNT_CHUNK)
                for n in _encode(tok, [texts[i] for i in at[start:start + COUNT_CHUNK]])]

    if cache is None:
        return count(list(range(len(texts))))
    return cache.counts([text_key(t) for t in texts], count)


def text_key(text: str) -> tuple[int, int]:
    """What a plain text's count is kept under (apart from any chat's: a chat's key is a list)."""
    return key_of(json.dumps({"text": text}, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def chat_key(messages: list[dict[str, str]], generation_prompt: bool) -> tuple[int, int]:
    """What a count is kept under: the chat itself (what the template renders from it is fixed
    by the tokenizer's digest, the cache's folder), as a memo key."""
    text = json.dumps([generation_prompt, messages], ensure_ascii=False, sort_keys=True)
    return key_of(text.encode("utf-8", "surrogatepass"))


DIGEST_CHARS = 24


def tokenizer_digest(tok: Any) -> str:
    """A digest of the tokenizer's whole definition and its chat template."""
    backend = getattr(tok, "backend_tokenizer", None)
    spec = backend.to_str() if backend is not None else (
        f"{type(tok).__name__}:{tok.name_or_path}:{len(tok)}")
    spec += "\n" + str(getattr(tok, "chat_template", "") or "")
    return hashlib.sha256(spec.encode()).hexdigest()[:DIGEST_CHARS]


def _files_of(name: str) -> Path | None:
    """The folder a tokenizer is read from: a local directory, or the Hub cache's snapshot of
    a Hub id (None: not on this machine yet)."""
    if Path(expand(name)).is_dir():
        return Path(expand(name))
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(name, "tokenizer_config.json")
    except ValueError:  # not a valid Hub id: loading it will say so
        return None
    return Path(found).parent if isinstance(found, str) else None


def named_tokenizer_digest(name: str, setting: str, memo_dir: str | None) -> str:
    """`tokenizer_digest` of the tokenizer `name`, read back when the same files were digested
    before (importing transformers and loading a tokenizer took ~5 s of a warm rebuild's
    start-up, only to name the count cache). The files are known by their folder, names,
    sizes and modification times, with the transformers and tokenizers versions; anything
    else, or no `memo_dir`, loads the tokenizer (which checks that it loads)."""
    folder = _files_of(name)
    if folder is None or memo_dir is None:
        return tokenizer_digest(load_tokenizer(name, setting))
    stats = sorted((p.name, st.st_size, st.st_mtime_ns)
                   for p in folder.iterdir() if p.is_file() and (st := p.stat()))
    versions = [importlib.metadata.version(d) for d in ("transformers", "tokenizers")]
    seen = hashlib.sha256(json.dumps([str(folder), stats, versions]).encode()).hexdigest()[:32]
    known = expand(memo_dir) / "digests" / seen
    try:
        digest = known.read_text().strip()
    except OSError:
        digest = ""
    if len(digest) != DIGEST_CHARS:  # not digested yet, or the file is damaged
        digest = tokenizer_digest(load_tokenizer(name, setting))
        storage.write_bytes(str(known), digest.encode())
    return digest


def _encode(tok: Any, texts: list[str]) -> list[int]:
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:  # a slow (Python) tokenizer
        return [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
    return [len(e.ids) for e in backend.encode_batch(texts, add_special_tokens=False)]


class CountCache:
    """Token counts of chats, on this machine's disk, by a digest of each chat.

    Counting is what token caps cost: a warm `rmr1` rebuild spent 66 s of its 190 s encoding
    ~1.5K tokens per row again, and ~10 s more loading the tokenizer in each worker and rendering
    the templates. Counts live under the digest of the tokenizer's whole definition and chat
    template (`tokenizer_digest`: a changed tokenizer or template counts afresh), in a memo
    (pipeline/engine/memo.py) of {chat digest: count}: the first block a worker counts loads it
    (a few bytes a row), and each block adds one segment for the chats it had to count. Keyed
    by chat, not by block, because which rows share a block after a shuffle is not the same
    from one run to the next. Cheap to lose: a missing or unreadable segment is counted again.
    (A template that prints today's date counts as of the day a chat was first counted.)"""

    def __init__(self, root: str, digest: str) -> None:
        self.memo = memo_at(expand(root) / f"counts-{digest}", pa.int64())

    def counts(self, keys: list[tuple[int, int]],
               count: Callable[[list[int]], list[int]]) -> list[int]:
        """The count of each key; `count(positions)` counts those not known yet."""
        return self.memo.values(keys, count).to_pylist()
