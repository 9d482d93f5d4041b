"""Device and numeric precision: where the model runs and how autocast is set up.

`precision = auto` picks bf16 autocast where the hardware runs it natively (CUDA with bf16,
CPUs with AVX512-BF16/AMX through oneDNN), fp16 with a gradient scaler on older CUDA GPUs,
and fp32 elsewhere. Weights and optimizer state always stay fp32.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from lmlab.cpu import onednn_allows_bf16
from lmlab.errors import UserError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str, what: str = "train.device") -> torch.device:
    """auto, cpu, cuda, cuda:N or mps -> the device; `what` names the setting in errors (a config
    field, or --device of the verbs that load a run)."""
    if not (name in ("auto", "cpu", "cuda", "mps") or (name.startswith("cuda:") and name[5:].isdigit())):
        raise UserError(f"{what} {name!r} is not valid; expected auto, cpu, cuda, cuda:N or mps")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{what}={name!r} but CUDA is not available here; use cpu or auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"{what}='mps' but MPS is not available here; use cpu or auto")
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


def resolve_precision(name: str, device: torch.device) -> str:
    if name == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
    if name == "fp16" and device.type != "cuda":
        raise UserError(f"train.precision='fp16' needs a CUDA device (this run uses {device.type}); "
                        f"use bf16 or fp32")
    return name


@dataclass
class Precision:
    """Autocast context plus the fp16 gradient scaler (a no-op for other precisions)."""

    name: str
    device: torch.device

    def __post_init__(self) -> None:
        enabled = self.name == "fp16"
        self.scaler = torch.amp.GradScaler("cuda", enabled=enabled) if enabled else None

    def autocast(self):
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=DTYPES[self.name])

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
