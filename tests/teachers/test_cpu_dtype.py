"""`teacher.dtype`: float32 where the CPU would run bfloat16 on its slow path, the setting
otherwise, and the same choice reaching both ways of running the model. That the real server
and engines load what was chosen is checked on the sample build's log (tests/test_e2e.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.engine.config import ConfigError
from pipeline.plan import make_plan
from pipeline.settings import load_config
from pipeline.teachers import cpu_dtype
from pipeline.teachers.backends.vllm_engines import hosted_as
from pipeline.teachers.cpu_dtype import cpu_flags, serving_dtype
from pipeline.teachers.local_server import LocalTeacherServer
from pipeline.teachers.offline_engine import engine_args

AVX2 = frozenset({"fpu", "sse4_2", "avx", "avx2", "fma"})
SKYLAKE = AVX2 | {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"}
ZEN4 = SKYLAKE | {"avx512_bf16"}


def teacher(*overrides: str, kind: str = "vllm_server"):
    return load_config([f"teacher={kind}", *overrides]).teacher


@pytest.mark.parametrize("flags, expected", [
    (AVX2, "float32"), (SKYLAKE, "float32"), (ZEN4, "auto"), (None, "auto")])
def test_auto_is_float32_on_a_cpu_without_avx512_bf16(flags, expected):
    """Measured (bench/RESULTS.md): bfloat16 prefill is 2-3x slower than float32 where the CPU
    lacks AVX-512 BF16, and 1.6x faster where it has it. Unknown flags: vLLM's own choice."""
    assert serving_dtype(teacher(), flags) == expected


def test_a_dtype_set_by_hand_or_on_gpus_is_passed_as_it_is():
    assert serving_dtype(teacher("teacher.dtype=bfloat16"), AVX2) == "bfloat16"
    assert serving_dtype(teacher("teacher.dtype=float32"), ZEN4) == "float32"
    gpus = teacher("teacher.num_gpus=1", kind="vllm_engines")
    assert serving_dtype(gpus, AVX2) == "auto"


def test_the_cpu_flags_are_read_from_linux(tmp_path: Path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f "
                    "avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n")
    monkeypatch.setattr(cpu_dtype.platform, "machine", lambda: "x86_64")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "absent") is None
    monkeypatch.setattr(cpu_dtype.platform, "machine", lambda: "aarch64")
    assert cpu_flags(info) is None


def test_the_server_and_the_engines_are_started_with_the_same_choice(monkeypatch, tmp_path):
    """Both ask the node they run on (they are built in the Ray actor that hosts the model)."""
    monkeypatch.setattr(cpu_dtype, "cpu_flags", lambda: AVX2)
    cmd = LocalTeacherServer(teacher(), tmp_path / "log").command("/models/m", 8000)
    assert cmd[cmd.index("--dtype") + 1] == "float32"
    assert engine_args(teacher(kind="vllm_engines"), "/models/m")["dtype"] == "float32"
    monkeypatch.setattr(cpu_dtype, "cpu_flags", lambda: ZEN4)
    cmd = LocalTeacherServer(teacher(), tmp_path / "log").command("/models/m", 8000)
    assert cmd[cmd.index("--dtype") + 1] == "auto"


def test_engines_of_another_dtype_are_other_engines_answers_are_shared():
    """A dtype is how the model is run, like the machine: stages asking in two formats start
    two sets of engines, and answers cached in one are read in the other."""
    from pipeline.teachers.cache import request_key
    from pipeline.teachers.requests import request_for

    auto, fp32 = teacher(), teacher("teacher.dtype=float32")
    assert hosted_as(auto) != hosted_as(fp32)
    msgs = [{"role": "user", "content": "question"}]
    assert request_key(request_for(auto, msgs)) == request_key(request_for(fp32, msgs))


def test_a_dtype_vllm_does_not_load_is_refused_before_anything_starts():
    with pytest.raises(ConfigError, match=re.escape(
            "teacher2.dtype=fp8 is not a number format vLLM loads weights in: set it to one "
            "of auto, float32, bfloat16, float16")):
        make_plan(load_config(["teacher2=vllm_engines", "teacher2.dtype=fp8"]))
