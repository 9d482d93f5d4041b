"""Native bf16 or not: the check honours oneDNN's ONEDNN_MAX_CPU_ISA as torch does."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from lmlab.train import precision


@pytest.fixture
def no_native_bf16(monkeypatch):
    """ONEDNN_MAX_CPU_ISA=AVX2 as an AVX2-only laptop would have it. oneDNN (and torch's check) read
    the variable once per process, so it is read first with the real setting: only lmlab's own
    reading sees the change, and the tests after this one keep the machine's real ISA."""
    torch.ops.mkldnn._is_mkldnn_bf16_supported()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")


def test_the_isa_cap_turns_native_bf16_off_in_this_process(no_native_bf16, monkeypatch):
    assert precision.cpu_has_bf16() is False
    assert precision.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")  # a cap above bf16: the hardware decides
    assert precision.cpu_has_bf16() is bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@pytest.mark.parametrize("isa", ["AVX2", "avx2_vnni", "AVX512_CORE_BF16"])
def test_lmlab_and_torch_agree_under_the_isa_cap(isa):
    code = ("import torch; from lmlab.train.precision import cpu_has_bf16; "
            "print(cpu_has_bf16(), torch.ops.mkldnn._is_mkldnn_bf16_supported())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "ONEDNN_MAX_CPU_ISA": isa}).stdout.split()
    assert out[0] == out[1], f"ONEDNN_MAX_CPU_ISA={isa}: lmlab says {out[0]}, torch {out[1]}"
