"""Learning-rate schedules (`train.schedule`): pure functions of the step.

`cosine` (the nanoGPT / GPT-3 recipe): linear warmup lr * (s+1) / (warmup+1) for
s < warmup_steps, then a half cosine from lr down to min_lr = lr * min_lr_ratio over
[warmup_steps, decay_steps], then min_lr. `constant`: the same warmup, then lr.
"""

from __future__ import annotations

import math

from lmlab.registry import Registry

SCHEDULES: Registry = Registry("train.schedule")


def _warmup(step: int, cfg) -> float | None:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
    return None


@SCHEDULES.register("cosine", "linear warmup, then cosine decay to lr * train.min_lr_ratio at train.decay_steps")
def cosine(step: int, cfg) -> float:
    warm = _warmup(step, cfg)
    if warm is not None:
        return warm
    end = cfg.decay_steps or cfg.max_steps
    min_lr = cfg.lr * cfg.min_lr_ratio
    if step >= end or end <= cfg.warmup_steps:
        return min_lr
    progress = (step - cfg.warmup_steps) / (end - cfg.warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - min_lr)


@SCHEDULES.register("constant", "linear warmup, then train.lr")
def constant(step: int, cfg) -> float:
    warm = _warmup(step, cfg)
    return cfg.lr if warm is None else warm


def lr_at(step: int, cfg) -> float:
    return SCHEDULES.get(cfg.schedule)(step, cfg)
