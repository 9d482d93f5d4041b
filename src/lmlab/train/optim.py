"""Optimizers (`train.optimizer`): AdamW, or Muon for the hidden matrices with AdamW for the rest.

`adamw`: torch's AdamW with two parameter groups. Weight decay applies to the weight matrices
of linear layers only. Biases, norm gains and embedding tables (token and position; with tied
embeddings that includes the output head) are not decayed: decaying gains and biases fights
normalization, and decaying embeddings penalizes rare tokens that get few gradient updates.

`muon`: torch's Muon (momentum, then the update orthogonalized by a Newton-Schulz iteration, in
bf16 only where the run is bf16 and the hardware has it natively: lmlab.train.muon) on
the 2-D weight matrices inside the network, at peak lr `train.muon_lr`; AdamW as above, at
`train.lr`, on everything Muon is not meant for: embeddings, the output head (tied or not),
norm gains and biases. This is the split of Keller Jordan's Muon, modded-nanogpt and nanochat.
Both follow the one schedule: each group's lr is the scheduled lr times its `lr_ratio`.
"""

from __future__ import annotations

import torch
from torch import nn

from lmlab.registry import Registry
from lmlab.train.muon import Muon
from lmlab.device import low_precision_dtype, resolve_precision

OPTIMIZERS: Registry = Registry("train.optimizer")

HEAD_MODULES = ("lm_head", "head")  # the output layer's name in every architecture (vocabulary rows)


def _kinds(model: nn.Module) -> list[tuple[nn.Parameter, str]]:
    """Each trainable parameter once (tied weights), in the model's order, with its kind:
    `embedding` (a table, a tied head included), `head` (an untied output layer), `matrix`
    (any other weight matrix, the hidden ones) or `vector` (norm gains, biases)."""
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    head_ids = {id(m.weight) for name, m in model.named_modules()
                if name.rsplit(".", 1)[-1] in HEAD_MODULES and isinstance(m, nn.Linear)}
    kinds, seen = [], set()
    for param in model.parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        kind = ("vector" if param.dim() < 2 else "embedding" if id(param) in embedding_ids
                else "head" if id(param) in head_ids else "matrix")
        kinds.append((param, kind))
    return kinds


def _of(kinds: list[tuple[nn.Parameter, str]], *wanted: str) -> list[nn.Parameter]:
    return [param for param, kind in kinds if kind in wanted]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's two groups: decay on every matrix that is not an embedding table (an untied
    head included), none on tables, norm gains and biases."""
    kinds = _kinds(model)
    return [{"params": _of(kinds, "matrix", "head"), "weight_decay": weight_decay},
            {"params": _of(kinds, "embedding", "vector"), "weight_decay": 0.0}]


def _adamw(groups: list[dict], cfg, device: torch.device) -> torch.optim.AdamW:
    """torch.optim.AdamW, fused where the device supports it (CPU and CUDA on torch >= 2.4):
    one kernel per step instead of a dozen per parameter, which matters for small models."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=fused)


@OPTIMIZERS.register("adamw", "AdamW on every parameter, weight decay on matrices other than embedding tables")
def adamw(model: nn.Module, cfg, device: torch.device) -> torch.optim.Optimizer:
    return _adamw(param_groups(model, cfg.weight_decay), cfg, device)


@OPTIMIZERS.register("muon", "Muon on the hidden matrices (peak lr train.muon_lr), AdamW on embeddings, "
                             "head, norms and biases (train.lr)")
def muon(model: nn.Module, cfg, device: torch.device) -> torch.optim.Optimizer | OptimizerChain:
    kinds = _kinds(model)
    hidden = _of(kinds, "matrix")
    if not hidden:  # no hidden matrices (a bigram table, a counted model): train.optimizer=adamw's AdamW
        return adamw(model, cfg, device)
    adam = _adamw([{"params": _of(kinds, "embedding", "head") + _of(kinds, "vector"), "weight_decay": 0.0}],
                  cfg, device)
    ns_dtype = low_precision_dtype(resolve_precision(cfg.precision, device), device)
    ortho = Muon([{"params": hidden, "lr_ratio": cfg.muon_lr / cfg.lr}], lr=cfg.muon_lr, ns_dtype=ns_dtype,
                 weight_decay=cfg.weight_decay, momentum=cfg.muon_momentum, nesterov=True, adjust_lr_fn="original")
    return OptimizerChain(ortho, adam)


# Bytes of gradient and state per parameter, a lower bound for memory forecasts made before the model
# is built: AdamW's gradient and two moments; for Muon only the gradient (its momentum, and the AdamW
# moments of embeddings and head, come on top).
adamw.min_state_bytes = 12
muon.min_state_bytes = 4


def make_optimizer(model: nn.Module, cfg, device: torch.device) -> torch.optim.Optimizer | OptimizerChain:
    return OPTIMIZERS.get(cfg.optimizer)(model, cfg, device)


def describe(optimizer: torch.optim.Optimizer | OptimizerChain) -> str:
    """What the start line says: each optimizer with the matrices or tensors it updates."""
    def one(opt) -> str:
        params = _params(opt)
        return f"{type(opt).__name__}: {sum(p.numel() for p in params) / 1e6:.3f}M parameters in {len(params)} tensors"

    return " + ".join(one(opt) for opt in _parts(optimizer))


def state_bytes(optimizer: torch.optim.Optimizer | OptimizerChain) -> int:
    """Optimizer memory in a step's peak (lmlab.train.memory): AdamW's two fp32 moments plus its
    multi-tensor step's temporaries, 12 bytes per parameter; Muon's one momentum buffer, 4 (its
    update is orthogonalized one matrix at a time)."""
    return sum((4 if isinstance(opt, torch.optim.Muon) else 12) * p.numel()
               for opt in _parts(optimizer) for p in _params(opt))


def _parts(optimizer: torch.optim.Optimizer | OptimizerChain) -> tuple[torch.optim.Optimizer, ...]:
    return optimizer.optimizers if isinstance(optimizer, OptimizerChain) else (optimizer,)


def _params(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]


class OptimizerChain:
    """Several torch optimizers over disjoint parameters, seen as one: `param_groups` lists every
    group (the lr schedule and gradient clipping walk them), `step` and `zero_grad` reach all,
    and `state_dict` is one torch-style dict with the parameters numbered across the chain in
    order, so checkpoints store and restore it like a single optimizer's."""

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.optimizers for g in opt.param_groups]

    @torch.no_grad()
    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        state, groups, offset = {}, [], 0
        for opt in self.optimizers:
            sd = opt.state_dict()
            state.update({offset + i: v for i, v in sd["state"].items()})
            groups += [{**g, "params": [offset + i for i in g["params"]]} for g in sd["param_groups"]]
            offset += sum(len(g["params"]) for g in sd["param_groups"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"the saved optimizer has {len(groups)} parameter groups, this one "
                             f"{len(self.param_groups)} (was it saved with another train.optimizer?)")
        offset = 0
        for opt in self.optimizers:
            mine, groups = groups[:len(opt.param_groups)], groups[len(opt.param_groups):]
            count = sum(len(g["params"]) for g in mine)
            opt.load_state_dict({
                "state": {int(i) - offset: v for i, v in state_dict["state"].items()
                          if offset <= int(i) < offset + count},
                "param_groups": [{**g, "params": [i - offset for i in g["params"]]} for g in mine]})
            offset += count
