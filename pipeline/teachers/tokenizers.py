"""Tokenizers, loaded once per process, for counting tokens as a model counts them.

Used by the token-length caps (the policy's tokenizer) and by the teacher budget, the cost cap
and `build --estimate` (the teacher's tokenizer, where it is public).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from pipeline.engine import storage
from pipeline.engine.config import ConfigError, expand


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


def chats_tokens(tok: Any, chats: list[list[dict[str, str]]], generation_prompt: list[bool],
                 cache: CountCache | None = None) -> list[int]:
    """`chat_tokens` of many chats at once: the templates are rendered in Python, the texts
    encoded in one call to the Rust tokenizer (several threads, no per-row Python objects), or
    their counts read from `cache` when these very texts were counted before."""
    texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=g)
             for m, g in zip(chats, generation_prompt, strict=True)]
    return (cache.counts(texts, lambda t: _encode(tok, t)) if cache is not None
            else _encode(tok, texts))


def _encode(tok: Any, texts: list[str]) -> list[int]:
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:  # a slow (Python) tokenizer
        return [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
    return [len(e.ids) for e in backend.encode_batch(texts, add_special_tokens=False)]


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class CountCache:
    """Token counts of rendered texts, a block at a time, on this machine's disk.

    Encoding is what counting costs (a warm `rmr1` rebuild spent 66 s of its 190 s encoding
    ~1.5K tokens per row again). A block's counts are kept under a digest of the tokenizer's
    whole definition and of the block's texts, so a changed tokenizer, template or row counts
    afresh; the same block is read back. Cheap to lose: a missing or unreadable file is counted
    again."""

    def __init__(self, root: str, tok: Any) -> None:
        backend = getattr(tok, "backend_tokenizer", None)
        spec = backend.to_str() if backend is not None else (
            f"{type(tok).__name__}:{tok.name_or_path}:{len(tok)}")
        spec += "\n" + str(getattr(tok, "chat_template", "") or "")
        self.dir = expand(root) / hashlib.sha256(spec.encode()).hexdigest()[:24]

    def counts(self, texts: list[str], encode: Callable[[list[str]], list[int]]) -> list[int]:
        key = hashlib.sha256(b"".join(_digest(t) for t in texts)).hexdigest()
        path = self.dir / key[:2] / f"{key}.json"
        try:
            known = json.loads(path.read_text())
            if isinstance(known, list) and len(known) == len(texts):
                return known
        except (OSError, ValueError):
            pass
        counted = encode(texts)
        storage.write_bytes(str(path), json.dumps(counted).encode())
        return counted
