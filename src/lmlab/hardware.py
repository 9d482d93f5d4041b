"""The hardware choices a config names: train.precision, train.device and train.dist_backend, each
a registry written once and without torch, so a config is validated and `lmlab presets
--components` lists them before torch loads. What they mean on a machine is resolved where torch
is: lmlab.device (device, precision, autocast) and lmlab.train.distributed (the backend)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from lmlab.registry import Registry

AUTO = "auto"  # every hardware choice has it: decided on the machine that runs


@dataclass(frozen=True)
class PrecisionKind:
    autocast: str = ""  # the torch dtype autocast computes in ("" = none: fp32, or decided by auto)
    cuda_only: bool = False  # fp16: its loss scaling is CUDA's gradient scaler
    scaler: bool = False

    @property
    def activation_bytes(self) -> int:
        """Bytes per activation value under this precision's autocast (memory forecasts)."""
        return 2 if self.autocast else 4


PRECISIONS: Registry = Registry("train.precision")
PRECISIONS.register(AUTO, "bf16 where the hardware runs it natively, fp16 on CUDA GPUs that emulate bf16, "
                          "else fp32")(PrecisionKind())
PRECISIONS.register("fp32", "no autocast")(PrecisionKind())
PRECISIONS.register("bf16", "bf16 autocast; weights and optimizer state stay fp32")(PrecisionKind("bfloat16"))
PRECISIONS.register("fp16", "fp16 autocast with a gradient scaler (CUDA only)")(
    PrecisionKind("float16", cuda_only=True, scaler=True))


@dataclass(frozen=True)
class DeviceKind:
    indexed: bool = False  # may name one of several: cuda:N
    available: Callable[[], bool] = lambda: True  # asks torch (imported then): is it on this machine?


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _mps() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


# Device names are a kind with an optional index (cuda:1), so no config field selects from this
# registry directly: TrainConfig checks train.device with device_kind.
DEVICES: Registry = Registry("train.device", config_field=False, noun="device")
DEVICES.register(AUTO, "cuda, else mps, else cpu")(DeviceKind())
DEVICES.register("cpu", "the CPU")(DeviceKind())
DEVICES.register("cuda", "the current CUDA GPU; cuda:N names the N-th")(DeviceKind(indexed=True, available=_cuda))
DEVICES.register("mps", "Apple's Metal GPU")(DeviceKind(available=_mps))
AUTO_ORDER = ("cuda", "mps", "cpu")  # what auto tries, first available wins


def device_kind(name: str) -> str | None:
    """The registered kind a device name is (cuda:1 -> cuda), None when it is none of them."""
    kind, colon, index = name.partition(":")
    if kind not in DEVICES or (colon and not (DEVICES[kind].indexed and index.isdigit())):
        return None
    return kind


def device_choices() -> str:
    """'auto, cpu, cuda, cuda:N or mps': the valid device names, for error messages."""
    names = [n for k in DEVICES for n in ((k, f"{k}:N") if DEVICES[k].indexed else (k,))]
    return f"{', '.join(names[:-1])} or {names[-1]}"


@dataclass(frozen=True)
class BackendKind:
    needs_cuda: bool = False


BACKENDS: Registry = Registry("train.dist_backend")
BACKENDS.register(AUTO, "nccl when the run uses CUDA, gloo otherwise")(BackendKind())
BACKENDS.register("gloo", "CPU (and GPU) collectives")(BackendKind())
BACKENDS.register("nccl", "NVIDIA's GPU collectives")(BackendKind(needs_cuda=True))
