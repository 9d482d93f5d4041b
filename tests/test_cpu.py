"""lmlab.cpu: the CPU's name and vector features from /proc/cpuinfo text, and oneDNN's ISA cap."""

from __future__ import annotations

import pytest

from lmlab import cpu
from lmlab.cpu import CpuInfo, onednn_allows_bf16, parse_cpuinfo

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse sse2 avx avx2
"""
LAPTOP = "processor\t: 0\nmodel name\t: Intel(R) Core(TM) i7-10510U CPU @ 1.80GHz\nflags\t\t: fpu sse avx avx2 fma\n"
GRAVITON = "processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd evtstrm aes sve bf16 i8mm\nCPU part\t: 0xd4f\n"


@pytest.mark.parametrize("text, model, features", [
    (SAPPHIRE_RAPIDS, "Intel(R) Xeon(R) Platinum 8480+", ("AVX2", "AVX-512", "AVX512-BF16", "AMX")),
    (LAPTOP, "Intel(R) Core(TM) i7-10510U CPU @ 1.80GHz", ("AVX2",)),
])
def test_the_first_processor_names_the_cpu_and_its_vector_features(text, model, features):
    assert parse_cpuinfo(text) == CpuInfo(model, features)


def test_an_arm_cpu_without_a_model_name_falls_back_to_the_platform(monkeypatch):
    monkeypatch.setattr(cpu.platform, "processor", lambda: "")
    monkeypatch.setattr(cpu.platform, "machine", lambda: "aarch64")
    assert parse_cpuinfo(GRAVITON) == CpuInfo("aarch64", ("NEON", "SVE", "BF16"))


def test_without_cpuinfo_the_features_are_unknown_not_guessed():
    assert parse_cpuinfo("") is None
    info = CpuInfo("arm", None)
    assert info.describe() == "arm (features unknown)" and info.to_dict()["features"] is None
    assert CpuInfo("Intel(R) Xeon(R)", ("AVX2", "AVX-512")).describe() == "Intel(R) Xeon(R) (AVX2, AVX-512)"


def test_this_machine_is_described(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    info = cpu.cpu_info()
    assert info.model and info.to_dict()["onednn_max_cpu_isa"] == "AVX2"


@pytest.mark.parametrize("cap, allows", [
    ("", True), ("AVX2", False), ("avx2", False), ("AVX2_VNNI", False), ("SSE41", False),
    ("AVX512_CORE", True), ("AVX512_CORE_BF16", True), ("AVX512_CORE_AMX", True), ("DEFAULT", True)])
def test_onednns_isa_cap_below_avx512_core_rules_out_bf16(cap, allows):
    assert onednn_allows_bf16({"ONEDNN_MAX_CPU_ISA": cap}) is allows
