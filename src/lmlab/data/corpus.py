"""Corpus: text from a source, split into train/val, encoded into token id arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lmlab.data.sources import SOURCES
from lmlab.errors import UserError


@dataclass
class Corpus:
    train_text: str
    val_text: str


@dataclass
class TokenSplits:
    train: torch.Tensor  # (N_train,) int64 ids
    val: torch.Tensor  # (N_val,) int64 ids


def load_corpus(data_cfg) -> Corpus:
    """Read the configured source and split it: the last `val_fraction` (at a line break) is val."""
    text = SOURCES.get(data_cfg.source)(data_cfg)
    return split_text(text, data_cfg.val_fraction)


def split_text(text: str, val_fraction: float) -> Corpus:
    cut = int(len(text) * (1.0 - val_fraction))
    newline = text.rfind("\n", 0, cut)
    if newline > cut * 0.9:  # prefer a line break close to the cut
        cut = newline + 1
    train, val = text[:cut], text[cut:]
    if len(val) < 2 or len(train) < 2:
        raise UserError(f"corpus of {len(text)} characters is too short to split into train and val")
    return Corpus(train, val)


def encode_splits(corpus: Corpus, tokenizer) -> TokenSplits:
    def enc(text: str) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(tokenizer.encode_array(text), dtype=np.int64))

    return TokenSplits(enc(corpus.train_text), enc(corpus.val_text))
