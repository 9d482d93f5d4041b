"""Batches: `(x, y)` LongTensors of shape (B, T), y = x shifted by one token.

Training batches are random windows whose positions depend only on (seed, step, micro-step),
so the batch stream is reproducible and resumes exactly from any step without replaying it.
Evaluation batches are consecutive non-overlapping windows, so every scored token is the same
across evaluations and runs.
"""

from __future__ import annotations

from typing import Iterator

import torch


class RandomWindows:
    """Seeded random windows from a 1-D token tensor; `batch(step, micro)` is a pure function."""

    def __init__(self, tokens: torch.Tensor, batch_size: int, context_len: int, seed: int):
        if len(tokens) <= context_len + 1:
            raise ValueError(f"{len(tokens)} tokens are too few for windows of {context_len + 1}")
        self.tokens = tokens
        self.batch_size = batch_size
        self.context_len = context_len
        self.seed = seed
        self._offsets = torch.arange(context_len + 1)
        self._gen = torch.Generator()

    def batch(self, step: int, micro: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        # A fresh seed per (step, micro): position in the stream is the only state to resume.
        self._gen.manual_seed(self.seed * 1_000_003 + step * 1_009 + micro)
        high = len(self.tokens) - self.context_len - 1
        starts = torch.randint(0, high + 1, (self.batch_size,), generator=self._gen)
        windows = self.tokens[starts[:, None] + self._offsets]  # (B, T+1)
        return windows[:, :-1], windows[:, 1:]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iterate(0)

    def iterate(self, start_step: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        step = start_step
        while True:
            yield self.batch(step)
            step += 1


def eval_windows(tokens: torch.Tensor, batch_size: int, context_len: int,
                 max_tokens: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive windows over a split; each token after the first is scored exactly once."""
    usable = len(tokens) - 1
    if max_tokens:
        usable = min(usable, max_tokens)
    n_windows = max(usable // context_len, 1)
    context_len = min(context_len, usable)
    starts = torch.arange(n_windows) * context_len
    offsets = torch.arange(context_len + 1)
    for i in range(0, n_windows, batch_size):
        windows = tokens[starts[i:i + batch_size, None] + offsets]  # (B, T+1)
        yield windows[:, :-1], windows[:, 1:]
