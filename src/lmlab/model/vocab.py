"""The padded vocabulary's rows (model.vocab_pad) in state dicts: imported weights get zero rows."""

from __future__ import annotations

import torch

VOCAB_ROWS = ("tok_emb.weight", "lm_head.weight", "lm_head.bias")  # tensors with one row per vocabulary id


def pad_vocab_rows(state: dict[str, torch.Tensor], cfg) -> dict[str, torch.Tensor]:
    """Zero rows up to cfg.padded_vocab for tensors holding the logical vocabulary only (HF weights)."""
    Vp = cfg.padded_vocab

    def pad(v: torch.Tensor) -> torch.Tensor:
        return torch.cat([v, v.new_zeros((Vp - v.size(0), *v.shape[1:]))]) if v.size(0) < Vp else v
    out = {k: (pad(v) if k in VOCAB_ROWS else v) for k, v in state.items()}
    if cfg.tie_embeddings and "lm_head.weight" in state:
        out["lm_head.weight"] = out["tok_emb.weight"]
    return out
