"""Weight-only int8 quantization for inference (`lmlab generate --quantize int8`).

At batch 1 a decoder's step reads every weight once and does two FLOPs with it, so on a CPU
generation is bound by memory bandwidth, not arithmetic: a 6 x 384 model reads 42 MB of fp32
weights per token. Storing each Linear weight as int8 with one fp32 scale per output row
(symmetric, scale = max|w_row| / 127) reads a quarter of the bytes. On CPU the int8 kernel
takes its input in bf16 (its fp32 path is ~14x slower on the measured machine), so each layer's
input is rounded to bf16; everything between the linear layers stays fp32.
The rounding error per weight is at most scale / 2, so logits move slightly: greedy text can
diverge from the fp32 model's after a while. Training and evaluation always use full weights.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class Int8Linear(nn.Module):
    """y = x W^T + b with W stored as int8 rows times fp32 row scales."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)  # (N,)
        self.register_buffer("weight_int8", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)
        self.register_buffer("scale_bf16", scale.to(torch.bfloat16))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)  # (B*T, K)
        if flat.device.type == "cpu":  # fused int8-weight GEMM
            y = torch._weight_int8pack_mm(flat.to(torch.bfloat16), self.weight_int8, self.scale_bf16).float()
        else:
            y = F.linear(flat.float(), self.dequantized())
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def dequantized(self) -> torch.Tensor:
        return self.weight_int8.float() * self.scale[:, None]


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of `model` with every nn.Linear replaced by an Int8Linear (for generation only)."""
    quantized = copy.deepcopy(model).eval()
    for name, module in list(quantized.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, child_name, Int8Linear(child))
    return quantized
