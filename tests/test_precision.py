"""Native bf16 or not: the check honours oneDNN's ONEDNN_MAX_CPU_ISA as torch does, and where bf16
is not native a Muon training step of the speedrun preset makes no bf16 tensor at all."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from lmlab.presets import get_preset
from lmlab import device as precision
from lmlab.train import train

HALF = (torch.bfloat16, torch.float16)


class HalfOutputs(TorchDispatchMode):
    """Records every aten op (after autocast) whose output is a 16-bit float tensor."""

    def __init__(self):
        super().__init__()
        self.ops: dict[str, torch.dtype] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.dtype in HALF:
                self.ops.setdefault(str(func), t.dtype)
        return out


@pytest.fixture
def no_native_bf16(monkeypatch):
    """ONEDNN_MAX_CPU_ISA=AVX2 as an AVX2-only laptop would have it. oneDNN (and torch's check) read
    the variable once per process, so it is read first with the real setting: only lmlab's own
    reading sees the change, and the tests after this one keep the machine's real ISA."""
    torch.ops.mkldnn._is_mkldnn_bf16_supported()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")


def _speedrun(steps: int = 1):
    """shakespeare_speedrun (Muon, precision auto) shrunk to seconds."""
    return get_preset("shakespeare_speedrun").replace(
        model={"n_layer": 2, "n_head": 2, "d_model": 32, "context_len": 16},
        train={"max_steps": steps, "batch_size": 4, "warmup_steps": 0, "progress": False},
        eval={"every": steps, "max_tokens": 256, "batch_size": 4})


def test_the_isa_cap_turns_native_bf16_off_in_this_process(no_native_bf16, monkeypatch):
    assert precision.cpu_has_bf16() is False
    assert precision.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")  # a cap above bf16: the hardware decides
    assert precision.cpu_has_bf16() is bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@pytest.mark.parametrize("isa", ["AVX2", "avx2_vnni", "AVX512_CORE_BF16"])
def test_lmlab_and_torch_agree_under_the_isa_cap(isa):
    code = ("import torch; from lmlab.device import cpu_has_bf16; "
            "print(cpu_has_bf16(), torch.ops.mkldnn._is_mkldnn_bf16_supported())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "ONEDNN_MAX_CPU_ISA": isa}).stdout.split()
    assert out[0] == out[1], f"ONEDNN_MAX_CPU_ISA={isa}: lmlab says {out[0]}, torch {out[1]}"


@pytest.fixture(params=["isa cap", "check"])
def bf16_absent(request, monkeypatch):
    """bf16 reported absent by ONEDNN_MAX_CPU_ISA=AVX2, or by lmlab's one check function alone."""
    if request.param == "check":
        monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    else:
        request.getfixturevalue("no_native_bf16")


def test_without_native_bf16_a_muon_speedrun_step_makes_no_bf16_tensor(bf16_absent, tmp_path, shakespeare):
    cfg = _speedrun()
    assert cfg.train.optimizer == "muon" and cfg.train.precision == "auto"
    with HalfOutputs() as seen:
        train(cfg, tmp_path / "run")
    assert seen.ops == {}, f"16-bit tensors made without native bf16: {seen.ops}"


def test_a_bf16_run_without_native_bf16_says_once_which_setting_avoids_the_slow_path(no_native_bf16, tmp_path,
                                                                                      capsys):
    cfg = _speedrun(2).replace(train={"precision": "bf16", "progress": True})
    train(cfg, tmp_path / "run")
    err = capsys.readouterr().err
    assert err.count("without native bf16") == 1 and "train.precision=auto (fp32 here) avoids it" in err
    assert precision.slow_path_note("fp32", torch.device("cpu")) is None


def test_auto_on_a_gpu_that_only_emulates_bf16_is_fp16(monkeypatch):
    """torch.cuda.is_bf16_supported() is True on a V100 or T4 (emulation); only native bf16 counts."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert precision.resolve_precision("auto", torch.device("cuda")) == "fp16"
    assert precision.low_precision_dtype("bf16", torch.device("cuda")) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # Ampere and newer
    assert precision.resolve_precision("auto", torch.device("cuda")) == "bf16"
    assert precision.low_precision_dtype("bf16", torch.device("cuda")) == torch.bfloat16
