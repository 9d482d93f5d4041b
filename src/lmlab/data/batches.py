"""Batches: `(x, y, mask)` with x, y LongTensors of shape (B, T), y = x shifted by one token, and
mask a bool (B, T) of scored targets (None when every target counts: the pack layout).

Training rows come from `MixtureBatches`: each row picks its source with the mixture's
probabilities, then a random window (pack) or row (pad, chunk) of it. Everything depends only on
(seed, step, micro-step), so the stream is reproducible and resumes exactly from any step without
replaying it. Evaluation rows are each part's own `eval_batches` (every token scored once).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from lmlab.data.layout import Batch, Stream


class MixtureBatches:
    """Seeded training rows from one or more parts (`Stream` / `Rows`); `batch(step, micro)` is pure."""

    def __init__(self, parts: list, probs: list[float], batch_size: int, context_len: int, seed: int):
        for part in parts:
            if isinstance(part, Stream) and len(part.tokens) <= context_len + 1:
                raise ValueError(f"{len(part.tokens)} tokens are too few for windows of {context_len + 1}")
        self.parts, self.batch_size, self.context_len, self.seed = parts, batch_size, context_len, seed
        self.probs = torch.tensor(probs, dtype=torch.float64)
        self._gen = torch.Generator()

    def batch(self, step: int, micro: int = 0) -> Batch:
        # A fresh seed per (step, micro): position in the stream is the only state to resume.
        self._gen.manual_seed(self.seed * 1_000_003 + step * 1_009 + micro)
        B, T = self.batch_size, self.context_len
        if len(self.parts) == 1:
            return self.parts[0].sample(self._gen, B, T)
        choice = torch.multinomial(self.probs, B, replacement=True, generator=self._gen)
        xs, ys, masks = [], [], []
        for i, part in enumerate(self.parts):
            n = int((choice == i).sum())
            if n:
                x, y, m = part.sample(self._gen, n, T)
                xs.append(x), ys.append(y), masks.append(m)
        mask = None if masks[0] is None else torch.cat(masks)  # one layout for all parts
        return torch.cat(xs), torch.cat(ys), mask

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
