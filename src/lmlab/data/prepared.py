"""Prepared: what the data stage hands to training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmlab.data.layout import Rows, Stream
from lmlab.data.batches import MixtureBatches


@dataclass
class Prepared:
    tokenizer: object
    splits: dict[str, dict[str, Stream | Rows]]  # split -> source label -> part (non-empty parts only)
    probs: dict[str, float]  # training: probability that a row comes from each source
    stats: dict
    directory: Path | None = None
    lengths: dict[str, np.ndarray] = field(default_factory=dict)  # source -> document lengths (tokens)

    def train_batches(self, batch_size: int, context_len: int, seed: int) -> "MixtureBatches":
        parts = self.splits["train"]
        names = [n for n in parts if self.probs.get(n, 0) > 0]
        return MixtureBatches([parts[n] for n in names], [self.probs[n] for n in names],
                              batch_size, context_len, seed)

    def train_tokens(self) -> torch.Tensor:
        """Every training token (count-based models fit on these), as int64."""
        arrays = [p.real_ids() for n, p in self.splits["train"].items() if self.probs.get(n, 0) > 0]
        return torch.from_numpy(np.concatenate(arrays).astype(np.int64))
