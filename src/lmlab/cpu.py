"""The CPU a number was measured on: its model name and the vector features that decide speed.

Throughput on a CPU depends on its vector units more than on anything lmlab does: bf16 matmuls
run natively with AVX512-BF16 or AMX and are emulated (several times slower) with AVX2 alone.
So every number lmlab records (bench-peak, the run manifest, the MFU line, bench/ results) names
the CPU and these features. Read from /proc/cpuinfo on Linux; elsewhere the name comes from
`platform` and the features are unknown (None), never guessed. No torch here: the ground floor.

`onednn_allows_bf16` reads oneDNN's own cap, ONEDNN_MAX_CPU_ISA, so that a machine with native
bf16 can behave like an AVX2-only laptop (`ONEDNN_MAX_CPU_ISA=AVX2 lmlab train ...`).
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

# /proc/cpuinfo flag -> the feature's name in lmlab's records, in the order they are listed
FEATURES = {
    "avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX",  # x86
    "asimd": "NEON", "sve": "SVE", "bf16": "BF16",  # aarch64 (its flags line is called Features)
}
NAME_KEYS = ("model name", "Model name", "Hardware", "cpu model")  # the first one present names the CPU
FLAG_KEYS = ("flags", "Features")

# oneDNN's ISA caps (ONEDNN_MAX_CPU_ISA, any case) under which it has no bf16 kernels of its own:
# torch's check (ideep: effective ISA >= avx512_core) then reports bf16 as not supported. Higher caps
# (AVX512_CORE, AVX512_CORE_BF16, AVX512_CORE_AMX, ...), DEFAULT or an unknown value leave it to the CPU.
BELOW_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2"})


@dataclass(frozen=True)
class CpuInfo:
    model: str
    features: tuple[str, ...] | None  # None: not known on this platform

    def describe(self) -> str:
        """'AMD EPYC (AVX2, AVX-512, AVX512-BF16)': the CPU in one phrase, for start lines and tables."""
        features = "features unknown" if self.features is None else ", ".join(self.features) or "no AVX2"
        return f"{self.model} ({features})"

    def to_dict(self) -> dict:
        return {**asdict(self), "features": None if self.features is None else list(self.features),
                "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or None}


def parse_cpuinfo(text: str) -> CpuInfo | None:
    """The first processor's name and features from /proc/cpuinfo text; None without either line."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    name = next((fields[k] for k in NAME_KEYS if fields.get(k)), None)
    flags = next((fields[k].split() for k in FLAG_KEYS if k in fields), None)
    if name is None and flags is None:
        return None
    features = None if flags is None else tuple(label for flag, label in FEATURES.items() if flag in flags)
    return CpuInfo(name or _platform_name(), features)


def _platform_name() -> str:
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CPU (read once per process)."""
    try:
        found = parse_cpuinfo(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:  # not Linux
        found = None
    return found or CpuInfo(_platform_name(), None)


def onednn_allows_bf16(env: dict | None = None) -> bool:
    """False when ONEDNN_MAX_CPU_ISA caps oneDNN below its bf16 kernels (e.g. AVX2)."""
    cap = (os.environ if env is None else env).get("ONEDNN_MAX_CPU_ISA", "")
    return cap.strip().upper() not in BELOW_BF16
