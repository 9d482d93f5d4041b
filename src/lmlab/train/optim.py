"""AdamW with two parameter groups.

Weight decay applies to the weight matrices of linear layers only. Biases, norm gains and
embedding tables (token and position; with tied embeddings that includes the output head)
are not decayed: decaying gains and biases fights normalization, and decaying embeddings
penalizes rare tokens that get few gradient updates.
"""

from __future__ import annotations

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, no_decay, seen = [], [], set()
    for _, param in model.named_parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        is_matrix = param.dim() >= 2 and id(param) not in embedding_ids
        (decay if is_matrix else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg, device: torch.device) -> torch.optim.AdamW:
    """torch.optim.AdamW, fused where the device supports it (CPU and CUDA on torch >= 2.4):
    one kernel per step instead of a dozen per parameter, which matters for small models."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                             betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=fused)
