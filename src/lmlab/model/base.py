"""LanguageModel: the contract every architecture honours, so that train, eval and generate
never branch on the architecture.

`forward(idx, targets=None, loss_mask=None, cache=None) -> (logits, loss)` with idx and
targets of shape (B, T), logits (B, T, V), and loss the mean next-token cross-entropy in nats
over unmasked targets (None without targets).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmlab.model.dropout import Dropout
from lmlab.model.hooks import hook_points


def dropout(p: float) -> nn.Module:
    """Dropout(p) (lmlab.model.dropout: cheaper masks on CPU), or an identity when p = 0 (one module
    call less per site when decoding)."""
    return Dropout(p) if p > 0 else nn.Identity()


def lm_loss(logits: torch.Tensor, targets: torch.Tensor | None,
            loss_mask: torch.Tensor | None = None) -> torch.Tensor | None:
    """Mean cross-entropy over targets where loss_mask is true (all when no mask)."""
    if targets is None:
        return None
    V = logits.size(-1)
    flat = logits.reshape(-1, V).float()  # (B*T, V); fp32 for a stable log-softmax under autocast
    if loss_mask is None:
        return F.cross_entropy(flat, targets.reshape(-1))
    per_token = F.cross_entropy(flat, targets.reshape(-1), reduction="none")
    mask = loss_mask.reshape(-1).to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


class LanguageModel(nn.Module):
    """Base class: parameter counts, FLOPs and hook points come from the model itself."""

    config = None  # the ModelConfig it was built from (vocab_size filled in)
    # Count-based models (n-gram tables) learn by counting the training split with `fit(tokens)`
    # before any step; the trainer takes this one declared path instead of probing for methods.
    learns_by_counting = False

    def fit(self, tokens: torch.Tensor) -> None:
        raise NotImplementedError(f"{type(self).__name__} learns by gradient steps, not by counting")

    def new_cache(self, batch_size: int, device=None, dtype=None):
        """State carried between generation steps (a KV cache); None when there is none."""
        return None

    def next_logits(self, idx: torch.Tensor, cache=None) -> torch.Tensor:
        """Logits (B, V) for the token after idx, advancing `cache`. Generation calls this; a
        model may skip computing the other positions' logits (the transformer does)."""
        return self(idx, cache=cache)[0][:, -1]

    def token_scores(self, idx: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token cross-entropy in nats (fp32) and whether the arg-max is the target, both (B, T):
        what evaluation needs. Models with a large head compute it without the full logits."""
        logits = self(idx)[0].float()  # (B, T, V)
        nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(targets.shape)
        return nats, logits.argmax(-1) == targets

    def num_params(self, embeddings: bool = True) -> int:
        """Distinct parameters (tied weights counted once); without embeddings, the token and
        position tables are left out (a separate output head still counts)."""
        total = sum(p.numel() for p in self.parameters())
        if embeddings:
            return total
        return total - sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Embedding))

    def flops_per_token(self) -> int:
        """Training FLOPs per token, forward + backward: 6 per weight of every matrix multiply
        (the output head included even when tied; Kaplan et al. 2020). Architectures add their
        own terms (attention's scores, see Transformer)."""
        return 6 * sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))

    def scored_only_flops(self) -> int:
        """The part of `flops_per_token` that training spends only on positions with a loss (the
        chunked head drops masked rows before its matmuls); 0 where every position pays it all."""
        return 0

    def hook_names(self) -> list[str]:
        return list(hook_points(self))

    def activation_bytes(self, batch_size: int, bytes_per_value: int = 2) -> int | None:
        """Activations kept for backward in one step; None where no estimate is defined."""
        return None

    def stats(self, batch_size: int = 1, bytes_per_value: int = 2) -> dict:
        """What the trainer prints at build and saves in the run (model.json)."""
        return {"arch": self.config.arch, "params": self.num_params(),
                "params_non_embedding": self.num_params(embeddings=False),
                "flops_per_token_train": self.flops_per_token(), "batch_size": batch_size,
                "activation_bytes_estimate": self.activation_bytes(batch_size, bytes_per_value)}

    def summary(self, batch_size: int | None = None, bytes_per_value: int = 2) -> str:
        text = (f"{type(self).__name__}: {self.num_params() / 1e6:.3f}M parameters "
                f"({self.num_params(embeddings=False) / 1e6:.3f}M non-embedding), "
                f"{self.flops_per_token() / 1e6:.2f} MFLOPs/token (train)")
        act = self.activation_bytes(batch_size, bytes_per_value) if batch_size else None
        return text + (f", ~{act / 2**20:,.0f} MiB of activations at batch {batch_size}" if act else "")
