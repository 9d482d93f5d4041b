"""All weight initialization lives here (`model.init`).

- ``gpt2``: every Linear and Embedding weight ~ N(0, 0.02), biases 0, norm gains 1; the
  output projections that write into the residual stream (modules named ``proj``) use
  std 0.02 / sqrt(2 * n_layer), so the residual stream's variance does not grow with depth
  (GPT-2 paper, section 2.3; nanoGPT). With tied embeddings the head shares N(0, 0.02).
  Initial logits are then tiny and the initial loss is ~ln(V).
- ``xavier``: Glorot-uniform Linear weights (variance 2 / (fan_in + fan_out); Glorot & Bengio
  2010), biases 0, embeddings N(0, 0.02) so that a tied head still starts near ln(V).
- ``torch``: PyTorch's defaults (Kaiming-uniform Linear, N(0, 1) Embedding). Embeddings of
  std 1 with a tied head give large initial logits: the initial loss is far above ln(V),
  which lmlab's trainer warns about.

The fixed sinusoidal position table is scaled here too (``embedding_std``): its per-dimension
RMS equals the token embeddings' init std, so neither signal drowns the other at the start (see
lmlab.model.components.position.SinusoidalPosition).
"""

from __future__ import annotations

import math

from torch import nn

from lmlab.registry import Registry

INITS: Registry = Registry("model.init")


@INITS.register("gpt2", "N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layer)")
def gpt2_init(model: nn.Module, cfg) -> None:
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    for name, param in model.named_parameters():
        if name.endswith("proj.weight"):
            nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))


@INITS.register("xavier", "Glorot-uniform linear weights, N(0, 0.02) embeddings")
def xavier_init(model: nn.Module, cfg) -> None:
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)


@INITS.register("torch", "PyTorch's per-layer defaults")
def torch_init(model: nn.Module, cfg) -> None:
    return None


EMBEDDING_STD = {"gpt2": 0.02, "xavier": 0.02, "torch": 1.0}  # each init's token-embedding std


def embedding_std(cfg) -> float:
    """The std a token embedding starts with under `cfg.init` (fixed position tables match it)."""
    return EMBEDDING_STD.get(cfg.init, 0.02)


def init_weights(model: nn.Module, cfg) -> None:
    INITS.get(cfg.init)(model, cfg)
