"""Model FLOPs utilization: the model's own training FLOPs per token times tokens per second,
over the peak dense FLOP/s of the devices that ran it (PaLM, Chowdhery et al. 2022, appendix B).

GPU peaks come from the vendors' datasheets, dense (no 2:4 sparsity), per precision, and are
looked up by the device's name; a device missing from the table gets MFU "unknown", never a
guess. A CPU has no datasheet number that means anything for PyTorch, so its peak is measured:
`lmlab bench-peak` times large matmuls and caches the best FLOP/s per (CPU, threads, torch) in
$LMLAB_CACHE/peak.json; training on a CPU reads that cache, and the first training on a CPU with no
entry measures one itself (about a second), so MFU is known from the first run. Both name the CPU
with its vector features (lmlab.cpu) and the precision, since a CPU's peak depends on them more than
on its name.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lmlab.cpu import cpu_info
from lmlab.hardware import PRECISIONS
from lmlab.device import cpu_has_bf16
from lmlab.io import atomic_write_text

TFLOPS = 1e12
# name pattern (matched in order, case-insensitive, on torch.cuda.get_device_name) ->
# dense tensor-core TFLOP/s: bf16, fp16 (fp32 accumulate), tf32, fp32 (non-tensor)
GPU_PEAKS: list[tuple[str, dict[str, float]]] = [
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.0}),
    ("H100 NVL", {"bf16": 835.0, "fp16": 835.0, "tf32": 418.0, "fp32": 60.0}),
    ("H100", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),  # SXM
    ("H200", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("GH200", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    ("L40S", {"bf16": 362.1, "fp16": 362.1, "tf32": 183.0, "fp32": 91.6}),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    ("A40", {"bf16": 149.7, "fp16": 149.7, "tf32": 74.8, "fp32": 37.4}),
    ("A10", {"bf16": 125.0, "fp16": 125.0, "tf32": 62.5, "fp32": 31.2}),  # not A10G: its figures differ
    ("RTX 4090", {"bf16": 165.2, "fp16": 165.2, "tf32": 82.6, "fp32": 82.6}),
    ("RTX 3090", {"bf16": 71.0, "fp16": 71.0, "tf32": 35.6, "fp32": 35.6}),
    ("V100", {"fp16": 125.0, "fp32": 15.7}),
    ("T4", {"fp16": 65.0, "fp32": 8.1}),
    ("MI300X", {"bf16": 1307.4, "fp16": 1307.4, "tf32": 653.7, "fp32": 163.4}),
    ("MI250X", {"bf16": 383.0, "fp16": 383.0, "fp32": 95.7}),
]
EXCLUDE = {"A10": ("A100", "A10G"), "L4": ("L40",)}  # substrings that are other devices


def gpu_peak(name: str, precision: str) -> float | None:
    """Dense peak FLOP/s of a GPU named `name` at `precision`, or None when not in the table."""
    low = name.lower()
    for pattern, peaks in GPU_PEAKS:
        if pattern.lower() in low and not any(x.lower() in low for x in EXCLUDE.get(pattern, ())):
            value = peaks.get(precision)
            return value * TFLOPS if value else None
    return None


def cuda_matmul_precision(precision: str) -> str:
    """fp32 matmuls run on tensor cores as TF32 when torch allows it (lmlab does on CUDA)."""
    if not PRECISIONS.get(precision).autocast and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return precision


# ----------------------------------------------------------------------------- CPU: measured


def cpu_key(threads: int | None = None) -> str:
    return f"{cpu_info().model}|threads={threads or torch.get_num_threads()}|torch={torch.__version__}"


def peak_cache() -> Path:
    return Path(os.environ.get("LMLAB_CACHE", "") or "~/.cache/lmlab").expanduser() / "peak.json"


def measure_cpu_peak(dtype: torch.dtype = torch.float32, size: int = 1024, seconds: float = 1.0) -> float:
    """Best FLOP/s of an (n x n) @ (n x n) matmul over repeated runs for about `seconds`."""
    own = torch.Generator().manual_seed(0)  # never the global RNG: a first-use measurement inside training
    a, b = (torch.randn(size, size, generator=own).to(dtype) for _ in range(2))  # must not move the run's draws
    torch.mm(a, b)  # warm up (thread pool, kernels)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - t0))
    return best


def bench_peak(seconds: float = 2.0, size: int = 1024, by: str = "`lmlab bench-peak`") -> dict:
    """Measure this CPU's matmul peak for fp32 (and bf16 when it has native bf16: an emulated bf16
    peak is no run's ceiling, since `precision = auto` trains in fp32 there) and cache it."""

    result = {"fp32": measure_cpu_peak(torch.float32, size, seconds)}
    if cpu_has_bf16():
        result["bf16"] = measure_cpu_peak(torch.bfloat16, size, seconds)
    path = peak_cache()
    table = _read_cache(path)
    table[cpu_key()] = {**result, "measured_at": time.time(), "size": size, "by": by, "cpu": cpu_info().to_dict()}
    atomic_write_text(path, json.dumps(table, indent=1))
    return {"key": cpu_key(), "path": str(path), "cpu": cpu_info().to_dict(), **result, "by": by}


FIRST_USE_SECONDS = 0.5  # per precision: a shorter look than bench-peak's, the price of a first run


def first_use_peaks() -> dict:
    """This CPU's cached peaks; with none yet, measured now (about a second) and cached for next time.
    A cache that cannot be written costs only the caching."""
    entry = _read_cache(peak_cache()).get(cpu_key())
    if entry:
        return entry
    try:
        return bench_peak(FIRST_USE_SECONDS, by="the first training on this CPU")
    except OSError:
        return {"fp32": measure_cpu_peak(torch.float32, 1024, FIRST_USE_SECONDS), "by": "this run (not cached)"}


def _read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def cpu_peak(precision: str) -> float | None:
    return _read_cache(peak_cache()).get(cpu_key(), {}).get(precision)


# ----------------------------------------------------------------------------- the meter


def executed_flops(flops_per_token: int, scored_only: int, scored_share: float = 1.0) -> float:
    """FLOPs per position a step executes when `scored_only` of them are spent only on the
    `scored_share` of positions with a loss (see `LanguageModel.scored_only_flops`)."""
    return flops_per_token - scored_only * (1.0 - scored_share)


@dataclass
class MfuMeter:
    """MFU of a run: `flops_per_token` (the model's own count) against `peak` FLOP/s per device.
    Of those, `scored_only` FLOPs per token count only for the share of positions with a loss
    (the chunked head skips the others: llmini_mix scores 43% of its positions)."""

    flops_per_token: int
    peak: float | None  # per device; None = unknown
    devices: int = 1
    source: str = ""  # where the peak came from (device name or the CPU cache), with the precision
    scored_only: int = 0

    def mfu(self, tokens_per_s: float, scored_share: float = 1.0) -> float | None:
        if not self.peak or not self.flops_per_token:
            return None
        flops = executed_flops(self.flops_per_token, self.scored_only, scored_share)
        return flops * tokens_per_s / (self.peak * self.devices)

    def describe(self) -> str:
        if self.peak is None:
            return f"MFU unknown ({self.source})"
        return f"peak {self.peak / TFLOPS:,.2f} TFLOP/s per device ({self.source})"


def meter_for(model, device: torch.device, precision: str, devices: int = 1) -> MfuMeter:
    flops, scored = model.flops_per_token(), model.scored_only_flops()
    if device.type == "cuda":
        name, matmul = torch.cuda.get_device_name(device), cuda_matmul_precision(precision)
        peak = gpu_peak(name, matmul)
        return MfuMeter(flops, peak, devices, f"{matmul} on {name}" if peak else
                        f"{name} is not in lmlab's peak table", scored)
    if device.type == "cpu":
        entry = first_use_peaks()
        peak = entry.get(precision)
        cpu = f"{precision} on {cpu_info().describe()}"
        source = (f"{cpu}, measured by {entry.get('by', '`lmlab bench-peak`')}" if peak
                  else f"no measured {cpu} peak: run `lmlab bench-peak`")
        return MfuMeter(flops, peak, devices, source, scored)
    return MfuMeter(flops, None, devices, f"no peak known for {device.type}", scored)


def format_mfu(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1%}"
