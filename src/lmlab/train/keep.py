"""Which steps keep a checkpoint of their own (train.keep_checkpoints = "log").

Like Pythia (Biderman et al. 2023): log-spaced early steps 0, 1, 2, 4, 8, ... below `every`,
then every `every` steps, and the final step, so the fast changes of early training (an
induction head forming) are resolved without storing thousands of checkpoints."""

from __future__ import annotations

from lmlab.registry import Registry

KEEP: Registry = Registry("train.keep_checkpoints")  # name -> is_kept(step, train_cfg, eval_every) -> bool


def kept_steps(max_steps: int, every: int) -> list[int]:
    """Every kept step up to max_steps, ascending."""
    every = max(every, 1)
    steps = {0, max_steps}
    power = 1
    while power < every and power <= max_steps:
        steps.add(power)
        power *= 2
    steps.update(range(every, max_steps + 1, every))
    return sorted(steps)


@KEEP.register("none", "only checkpoints/last and best")
def keep_none(step: int, cfg, eval_every: int) -> bool:
    return False


@KEEP.register("log", "also checkpoints/step-N at steps 0, 1, 2, 4, ... below train.keep_every, then every "
                      "train.keep_every (0 = eval.every), as Pythia keeps them")
def is_kept(step: int, cfg, eval_every: int) -> bool:
    every = max(cfg.keep_every or eval_every, 1)
    if step in (0, cfg.max_steps) or step % every == 0:
        return True
    return step < every and step & (step - 1) == 0  # a power of two
