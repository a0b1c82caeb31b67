"""Prefill speed of the embedded teacher on this CPU in bfloat16 and float32 (`teacher.dtype`).

    .venv/bin/python bench/cpu_dtype_bench.py [--emulate avx2|avx512] [--prompts 8]

Each format runs in a child process: vLLM's offline engine on the converted checkpoint,
one warm-up request, then `--prompts` prompts of ~1,600 tokens with 16 tokens out each.
`--emulate` makes vLLM and torch on this machine take the paths they take on a CPU without
AVX-512 (`avx2`) or without AVX-512 BF16 (`avx512`): vLLM's CPU checks answer no, oneDNN is
capped at that instruction set (ONEDNN_MAX_CPU_ISA) and torch's kernels too (ATEN_CPU_CAPABILITY).
It reproduces the real AVX2 machine's "Failed to create oneDNN linear" fallback, not its clock.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Loaded first in each child (PYTHONPATH): when vLLM's platform package is imported, torch's
# CPU feature checks that vLLM reads are made to answer no.
HOOK = '''
import importlib.abc, sys
NO = {checks!r}
class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "vllm.platforms":
            sys.meta_path.remove(self)
            import torch.cpu
            for check in NO:
                setattr(torch.cpu, check, lambda: False)
        return None
sys.meta_path.insert(0, _Hook())
'''
NOT_BF16 = ["_is_avx512_bf16_supported", "_is_amx_tile_supported", "_is_amx_fp16_supported",
            "_is_avx512_vnni_supported"]
EMULATE = {"avx2": (["_is_avx512_supported", *NOT_BF16], "AVX2", "avx2"),
           "avx512": (NOT_BF16, "AVX512_CORE", None)}


def child(dtype: str, prompts: int) -> None:
    from vllm import LLM, SamplingParams

    from pipeline.teachers.local_model import ensure_checkpoint

    model = ensure_checkpoint(Path("~/.cache/rubricforge/models").expanduser())
    started = time.perf_counter()
    llm = LLM(model=str(model), dtype=dtype, enforce_eager=True, max_model_len=4096)
    loaded = time.perf_counter()
    text = "The judge reads both answers, writes a rubric and weighs each claim in turn. " * 100
    asked = [f"Question {i}: {text}" for i in range(prompts)]
    params = SamplingParams(max_tokens=16, temperature=0)
    llm.generate(asked[:1], params, use_tqdm=False)
    t0 = time.perf_counter()
    out = llm.generate(asked, params, use_tqdm=False)
    seconds = time.perf_counter() - t0
    tokens = sum(len(o.prompt_token_ids) for o in out)
    print(f"RESULT {dtype} start {loaded - started:.1f} s, {prompts} prompts, {tokens} tokens "
          f"in {seconds:.1f} s: {tokens / seconds:.0f} prompt tokens/s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--emulate", choices=sorted(EMULATE), help="take another CPU's paths")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.prompts)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1",
           "VLLM_NO_USAGE_STATS": "1", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as hook_dir:
        if args.emulate:
            checks, onednn, aten = EMULATE[args.emulate]
            Path(hook_dir, "sitecustomize.py").write_text(HOOK.format(checks=checks))
            env.update(PYTHONPATH=f"{hook_dir}:{ROOT}", ONEDNN_MAX_CPU_ISA=onednn)
            if aten:
                env["ATEN_CPU_CAPABILITY"] = aten
        print(f"CPU paths: {args.emulate or 'this machine'}")
        for dtype in ("bfloat16", "float32"):
            done = subprocess.run([sys.executable, __file__, "--child", dtype, "--prompts",
                                   str(args.prompts)], env=env, capture_output=True, text=True)
            lines = (done.stdout + done.stderr).splitlines()
            print(next((x[7:] for x in lines if x.startswith("RESULT ")), f"{dtype} failed: "
                       + " | ".join(lines[-3:])))
            fallback = [x for x in lines if "Failed to create oneDNN linear" in x]
            if fallback:
                print(f"  vLLM: {fallback[0].split('] ', 1)[-1][:80]}")


if __name__ == "__main__":
    main()
