"""A training run interrupted in the middle, in process, and the comparison exact resume needs."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import torch
from safetensors.torch import load_file

import lmlab.train.loop as loop
from lmlab.train import train


def train_interrupted(cfg, run_dir: Path, at_step: int) -> None:
    """Train `cfg` into `run_dir` and stop it with a KeyboardInterrupt as the loop starts step
    `at_step` (0-based): what a run killed there leaves behind, its last checkpoint included."""
    real_step = loop.train_step

    def crash(model, opt, batches, step, *a, **kw):
        if step == at_step:
            raise KeyboardInterrupt
        return real_step(model, opt, batches, step, *a, **kw)

    with mock.patch.object(loop, "train_step", crash), pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir)


def same_final_weights(a: Path, b: Path) -> bool:
    """Whether two runs' `last` checkpoints hold bit-identical weights."""
    wa, wb = (load_file(str(d / "checkpoints/last/model.safetensors")) for d in (a, b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
