"""Hook points: identity modules at stable dotted names, for looking inside without patching.

Every model places `HookPoint`s where analysis wants activations (`hook_embed`,
`blocks.{i}.attn.hook_pattern`, `blocks.{i}.hook_resid_post`, ...). `run_with_cache`
records them for one forward pass; `add_hook` lets a caller edit an activation (e.g. zero a
head). A hook point costs one identity call when nothing listens. [TransformerLens HookPoint]
"""

from __future__ import annotations

import contextlib
import fnmatch
from typing import Callable, Iterator

import torch
from torch import nn
from torch.nn.modules import module as _nn_module


class HookPoint(nn.Module):
    """Identity; its dotted module name is the hook's name."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # Skip nn.Module's call machinery when nobody listens: a model has dozens of hook
        # points, and at batch-1 decoding their dispatch cost is measurable.
        if self._forward_hooks or self._forward_pre_hooks or _global_hooks():
            return super().__call__(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def active(self) -> bool:
        return bool(self._forward_hooks)


def _global_hooks() -> bool:
    return bool(_nn_module._global_forward_hooks or _nn_module._global_forward_pre_hooks)


def hook_points(model: nn.Module) -> dict[str, HookPoint]:
    return {name: m for name, m in model.named_modules() if isinstance(m, HookPoint)}


def _select(model: nn.Module, names: str | list[str] | None) -> dict[str, HookPoint]:
    points = hook_points(model)
    if names is None:
        return points
    patterns = [names] if isinstance(names, str) else names
    chosen = {n: p for n, p in points.items() if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)}
    if not chosen:
        raise KeyError(f"no hook point matches {patterns}; examples: {', '.join(list(points)[:6])}")
    return chosen


@contextlib.contextmanager
def hooks(model: nn.Module, fns: dict[str, Callable]) -> Iterator[None]:
    """Temporarily attach `fn(activation, name) -> activation | None` to hook points (glob
    patterns allowed); returning a tensor replaces the activation, e.g. to ablate a head."""
    handles = []
    try:
        for pattern, fn in fns.items():
            for name, point in _select(model, pattern).items():
                handles.append(point.register_forward_hook(
                    lambda _m, _inp, out, fn=fn, name=name: fn(out, name)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def run_with_cache(model: nn.Module, idx: torch.Tensor,
                   names: str | list[str] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run `model(idx)` and return (logits, {hook name: activation}) for the chosen hook points."""
    cache: dict[str, torch.Tensor] = {}

    def keep(out: torch.Tensor, name: str) -> None:
        cache[name] = out.detach()

    with hooks(model, {n: keep for n in _select(model, names)}):
        logits, _ = model(idx)
    return logits, cache
