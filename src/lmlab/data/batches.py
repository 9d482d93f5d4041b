"""Batches: `(x, y, mask)` with x, y LongTensors of shape (B, T), y = x shifted by one token, and
mask a bool (B, T) of scored targets (None when every target counts: the pack layout).

Training rows come from `MixtureBatches`: each row picks its source with the mixture's
probabilities, then a random window (pack) or row (pad, chunk) of it. Everything depends only on
(seed, step, micro-step, rank), so the stream is reproducible and resumes exactly from any step
without replaying it. Evaluation rows are each part's own `eval_batches` (every token scored once).

The rows of one optimizer step are drawn together: `batch_size * grad_accum` rows from one seed
per step. Micro-step m on rank r of `world` takes the slice v = m * world + r of `batch_size /
world` rows. So the rows of a step do not depend on how it is split: 2 ranks x batch B/2, 1
process x batch B, and 1 process with B/2 and accumulation 2 train on exactly the same rows, and a
run resumes on a different number of ranks with the same data.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from lmlab.data.layout import Batch, Stream


class MixtureBatches:
    """Seeded training rows from one or more parts (`Stream` / `Rows`); `batch(step, micro)` is pure.

    `batch_size` is the global micro-batch (all ranks together); `split(grad_accum, rank, world)`
    says which share of each step this process trains on."""

    def __init__(self, parts: list, probs: list[float], batch_size: int, context_len: int, seed: int):
        for part in parts:
            if isinstance(part, Stream) and len(part.tokens) <= context_len + 1:
                raise ValueError(f"{len(part.tokens)} tokens are too few for windows of {context_len + 1}")
        self.parts, self.batch_size, self.context_len, self.seed = parts, batch_size, context_len, seed
        self.probs = torch.tensor(probs, dtype=torch.float64)
        self._gen = torch.Generator()
        self.grad_accum, self.rank, self.world = 1, 0, 1
        self._drawn: tuple[int, tuple] | None = None

    def split(self, grad_accum: int, rank: int = 0, world: int = 1) -> "MixtureBatches":
        if self.batch_size % world:
            raise ValueError(f"batch size {self.batch_size} is not divisible by {world} ranks")
        self.grad_accum, self.rank, self.world = grad_accum, rank, world
        self._drawn = None
        return self

    @property
    def rows_per_rank(self) -> int:
        return self.batch_size // self.world

    def draw(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(part of each row, index inside that part) for the `batch_size * grad_accum` rows of a step."""
        if self._drawn is not None and self._drawn[0] == step:
            return self._drawn[1]
        # A fresh seed per step: position in the stream is the only state to resume.
        self._gen.manual_seed(self.seed * 1_000_003 + step * 1_009)
        n, T = self.batch_size * self.grad_accum, self.context_len
        if len(self.parts) == 1:
            rows = (np.zeros(n, dtype=np.int64), self.parts[0].draw(self._gen, n, T))
        else:
            choice = torch.multinomial(self.probs, n, replacement=True, generator=self._gen).numpy()
            which = np.zeros(n, dtype=np.int64)
            for i, part in enumerate(self.parts):
                at = np.flatnonzero(choice == i)
                if len(at):
                    which[at] = part.draw(self._gen, len(at), T)
            rows = (choice, which)
        self._drawn = (step, rows)
        return rows

    def micro_batches(self, step: int) -> list[Batch]:
        """This rank's micro-batches of optimizer step `step`: the stream owns grad_accum."""
        return [self.batch(step, micro) for micro in range(self.grad_accum)]

    def step_rows(self, step: int) -> int:
        """Rows of optimizer step `step` over every rank and micro-step."""
        return self.batch_size * self.grad_accum

    def batch(self, step: int, micro: int = 0) -> Batch:
        """This rank's rows of micro-step `micro` of optimizer step `step`."""
        if not 0 <= micro < self.grad_accum:
            raise ValueError(f"micro-step {micro} outside 0..{self.grad_accum - 1}; call split(grad_accum) first")
        part_of, index = self.draw(step)
        b, T = self.rows_per_rank, self.context_len
        v = micro * self.world + self.rank
        part_of, index = part_of[v * b:(v + 1) * b], index[v * b:(v + 1) * b]
        if len(self.parts) == 1:
            return self.parts[0].take(index, T)
        x, y = torch.empty(b, T, dtype=torch.long), torch.empty(b, T, dtype=torch.long)
        mask = None
        for i, part in enumerate(self.parts):
            at = np.flatnonzero(part_of == i)
            if len(at):
                xi, yi, mi = part.take(index[at], T)
                x[at], y[at] = xi, yi
                if mi is not None:  # one layout for all parts
                    mask = torch.zeros(b, T, dtype=torch.bool) if mask is None else mask
                    mask[at] = mi
        return x, y, mask

    def __iter__(self) -> Iterator[Batch]:
        return self.iterate(0)

    def iterate(self, start_step: int) -> Iterator[Batch]:
        step = start_step
        while True:
            yield self.batch(step)
            step += 1


def random_windows(tokens, batch_size: int, context_len: int, seed: int) -> MixtureBatches:
    """Seeded random windows of one token array (the pack layout of a single source)."""
    array = tokens.numpy() if isinstance(tokens, torch.Tensor) else np.asarray(tokens)
    return MixtureBatches([Stream(array)], [1.0], batch_size, context_len, seed)


def eval_windows(tokens, batch_size: int, context_len: int, max_tokens: int = 0) -> Iterator[Batch]:
    """Consecutive windows over one token array; each token after the first is scored exactly once."""
    array = tokens.numpy() if isinstance(tokens, torch.Tensor) else np.asarray(tokens)
    return Stream(array).eval_batches(batch_size, context_len, max_tokens)
