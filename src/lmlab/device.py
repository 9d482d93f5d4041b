"""Device and numeric precision: where the model runs and how autocast is set up. On the ground
floor: training and every reader of a run (eval, generate, analysis, export) resolve them here.

`precision = auto` picks bf16 autocast where the hardware runs it natively (CUDA with bf16,
CPUs with AVX512-BF16/AMX through oneDNN), fp16 with a gradient scaler on older CUDA GPUs,
and fp32 elsewhere. Weights and optimizer state always stay fp32.

lmlab's own low-precision math outside autocast (Muon's Newton-Schulz iteration) follows the same
rule through `low_precision_dtype`: bf16 only in a bf16 run on hardware that has it natively. A CPU
without it (AVX2 only) emulates every bf16 matmul, several times slower than fp32.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from lmlab.cpu import cpu_info, onednn_allows_bf16
from lmlab.errors import UserError
from lmlab.hardware import AUTO, AUTO_ORDER, DEVICES, PRECISIONS, device_choices, device_kind


def resolve_device(name: str, what: str = "train.device") -> torch.device:
    """auto, cpu, cuda, cuda:N or mps -> the device; `what` names the setting in errors (a config
    field, or --device of the verbs that load a run)."""
    kind = device_kind(name)
    if kind is None:
        raise UserError(f"{what} {name!r} is not valid; expected {device_choices()}")
    if kind == AUTO:
        return torch.device(next(k for k in AUTO_ORDER if DEVICES[k].available()))
    if not DEVICES[kind].available():
        raise UserError(f"{what}={name!r} but {kind.upper()} is not available here; use cpu or auto")
    return torch.device(name)


def configure_matmul(device: torch.device) -> None:
    """On CUDA, let fp32 matmuls and convolutions use TF32 tensor cores (Ampere and newer):
    10 mantissa bits in the multiply, fp32 accumulate; what autocast leaves in fp32 runs faster."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def cpu_has_bf16() -> bool:
    """oneDNN runs bf16 natively on this CPU. torch's check honours ONEDNN_MAX_CPU_ISA only as it
    was when oneDNN first looked (once per process); lmlab reads the cap itself, so the answer
    agrees with a fresh process's and follows a change made later (a test, a notebook)."""
    if not onednn_allows_bf16():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def native_bf16(device: torch.device) -> bool:
    """bf16 matmuls run natively (not emulated) on `device`."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and cpu_has_bf16()


def _is_bf16(precision: str) -> bool:
    return PRECISIONS.get(precision).autocast == "bfloat16"


def low_precision_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype of lmlab's own matmuls outside autocast that tolerate rounding (Muon's
    orthogonalization): bf16 in a bf16 run where bf16 is native, else fp32. An fp32 run stays fp32."""
    return torch.bfloat16 if _is_bf16(precision) and native_bf16(device) else torch.float32


def slow_path_note(precision: str, device: torch.device) -> str | None:
    """The start line's warning when the run asked for a precision this hardware only emulates."""
    if _is_bf16(precision) and device.type == "cpu" and not cpu_has_bf16():
        return (f"lmlab: warning: train.precision=bf16 on a CPU without native bf16 ({cpu_info().describe()}"
                f"{_cap()}): every bf16 matmul is emulated, several times slower than fp32; "
                f"train.precision=auto (fp32 here) avoids it")
    return None


def _cap() -> str:
    return "" if onednn_allows_bf16() else ", ONEDNN_MAX_CPU_ISA caps oneDNN below bf16"


def resolve_precision(name: str, device: torch.device) -> str:
    if name == AUTO:
        if device.type == "cuda":  # is_bf16_supported() alone is True on V100/T4 too, which emulate bf16
            return "bf16" if native_bf16(device) else "fp16"
        return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
    if PRECISIONS.get(name).cuda_only and device.type != "cuda":
        raise UserError(f"train.precision={name!r} needs a CUDA device (this run uses {device.type}); "
                        f"use bf16 or fp32")
    return name


@dataclass
class Precision:
    """Autocast context plus the fp16 gradient scaler (a no-op for other precisions)."""

    name: str
    device: torch.device

    def __post_init__(self) -> None:
        self.kind = PRECISIONS.get(self.name)  # a resolved name: never auto
        self.scaler = torch.amp.GradScaler("cuda") if self.kind.scaler else None

    def autocast(self):
        if not self.kind.autocast:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=getattr(torch, self.kind.autocast))

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
