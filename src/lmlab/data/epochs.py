"""Epochs: every training row exactly once per epoch, in a seeded order per epoch (`train.epochs`).

A row is a pack stream's non-overlapping window of `context_len + 1` tokens (windows share one
token, so every token after the first is a target once, as in evaluation) or a pad/chunk row.
The rows of all training parts form one index space [0, N); epoch e visits them in the order of
a permutation drawn from a generator seeded by (seed, e) alone. Step s is micro-batches
`(s % steps_per_epoch) * grad_accum + micro` of epoch `s // steps_per_epoch`, so like
`MixtureBatches` a batch is a pure function of (seed, step, micro): resuming mid-epoch needs
nothing but the step. The last micro-batches of an epoch may be short (or empty, when
grad_accum > 1): no row is dropped and none repeats. Mixture weights do not apply: an epoch is
the whole training split once.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lmlab.data.layout import Batch, Rows, Stream, _long


def part_rows(part, T: int) -> int:
    """Rows of one part in an epoch."""
    if isinstance(part, Stream):
        return max((len(part.tokens) - 1) // T, 0)
    return len(part.rows)


def rows_of(part, idx: np.ndarray, T: int) -> Batch:
    """Rows `idx` of a part as (x, y, mask)."""
    if isinstance(part, Stream):
        windows = _long(part.tokens[idx[:, None] * T + np.arange(T + 1)])  # (n, T+1)
        return windows[:, :-1], windows[:, 1:], None
    assert isinstance(part, Rows)
    return part._batch(idx)


class EpochBatches:
    """Seeded epochs over the rows of the training parts; `batch(step, micro)` is pure."""

    def __init__(self, parts: list, batch_size: int, context_len: int, seed: int, grad_accum: int = 1):
        self.parts, self.batch_size, self.T, self.seed = parts, batch_size, context_len, seed
        self.grad_accum = grad_accum
        counts = np.array([part_rows(p, context_len) for p in parts], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)])  # part i owns [starts[i], starts[i+1])
        self.n_rows = int(self.starts[-1])
        if self.n_rows == 0:
            raise ValueError(f"no training rows of {context_len + 1} tokens for an epoch")
        self.steps_per_epoch = math.ceil(math.ceil(self.n_rows / batch_size) / grad_accum)
        self._perm: tuple[int, np.ndarray] | None = None

    def order(self, epoch: int) -> np.ndarray:
        """The permutation of all N rows that epoch `epoch` follows."""
        if self._perm is None or self._perm[0] != epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + 7_919 * (epoch + 1))
            self._perm = (epoch, torch.randperm(self.n_rows, generator=gen).numpy())
        return self._perm[1]

    def rows(self, step: int, micro: int = 0) -> np.ndarray:
        """Global row indices of one micro-batch (possibly short or empty at an epoch's end)."""
        epoch, k = divmod(step, self.steps_per_epoch)
        first = (k * self.grad_accum + micro) * self.batch_size
        return self.order(epoch)[first:first + self.batch_size]

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def micro_batches(self, step: int) -> list[Batch]:
        """The micro-batches of optimizer step `step` (an epoch's last step may have fewer)."""
        return [b for b in (self.batch(step, micro) for micro in range(self.grad_accum)) if b is not None]

    def step_rows(self, step: int) -> int:
        """Rows of optimizer step `step` (an epoch's last step may be short)."""
        return sum(len(self.rows(step, micro)) for micro in range(self.grad_accum))

    def batch(self, step: int, micro: int = 0) -> Batch | None:
        idx = self.rows(step, micro)
        if len(idx) == 0:
            return None
        part_of = np.searchsorted(self.starts, idx, side="right") - 1
        xs, ys, masks = [], [], []
        for i in np.unique(part_of):
            x, y, m = rows_of(self.parts[i], idx[part_of == i] - self.starts[i], self.T)
            xs.append(x), ys.append(y), masks.append(m)
        mask = None if masks[0] is None else torch.cat(masks)  # one layout for all parts
        return torch.cat(xs), torch.cat(ys), mask
