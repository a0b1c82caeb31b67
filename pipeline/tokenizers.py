"""Tokenizers, loaded once per process, for counting tokens as a model counts them.

Used by the token-length caps (the policy's tokenizer) and by the teacher budget, the cost cap
and `build --estimate` (the teacher's tokenizer, where it is public).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pipeline.config import ConfigError, expand


def local_model_dir(model_dir: str) -> str:
    """The embedded model's checkpoint (converted on first use): its tokenizer needs no network."""
    from pipeline.local_model import ensure_checkpoint

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
