"""The number format a self-hosted teacher's weights run in (`teacher.dtype`).

vLLM's `auto` runs a float32 checkpoint (the embedded model is one) in bfloat16 on CPU. That is
fast only where the CPU multiplies bfloat16 itself (AVX-512 BF16, which is what vLLM checks to
load its bfloat16 kernels): elsewhere its oneDNN matmul cannot be built, it falls back to
torch's, and prefill runs 2-3x slower than in float32 (bench/RESULTS.md, "The CPU engines'
number format"). So on such a CPU `auto` means float32. It is worked out on the node that
hosts the model, which may not be the driver's.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

DTYPES = ("auto", "float32", "bfloat16", "float16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """The x86 feature flags of this machine's CPU as Linux reports them, or None where there
    are none to read (another OS, another architecture)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split())
    return None


def serving_dtype(teacher_cfg: Any, flags: frozenset[str] | None = None) -> str:
    """What vLLM is told to load the weights in: the setting, but for `auto` on an x86 CPU
    without AVX-512 BF16, where float32 is the faster."""
    t = teacher_cfg
    if t.dtype != "auto" or t.num_gpus:
        return t.dtype
    flags = cpu_flags() if flags is None else flags
    return "float32" if flags is not None and "avx512_bf16" not in flags else "auto"
