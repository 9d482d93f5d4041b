"""Sampling: greedy, temperature, top-k and top-p (nucleus), with the model's KV cache.

The cache holds keys and values of the tokens seen so far, so each new token costs one
position's work instead of the whole prefix. Once the text is longer than the model's
context, the oldest tokens must drop out and absolute positions shift, so from then on each
step recomputes the last `context_len` tokens (exactly what a cache-less loop would do).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from lmlab.errors import UserError


def check_sampling(max_new_tokens: int, temperature: float, top_k: int, top_p: float) -> None:
    """Refuse settings that would sample nonsense (a negative temperature flips the distribution)."""
    if max_new_tokens < 0:
        raise UserError(f"max_new_tokens={max_new_tokens} is invalid; expected 0 or more")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise UserError(f"temperature={temperature} is invalid; expected a finite number >= 0 (0 = greedy)")
    if top_k < 0:
        raise UserError(f"top_k={top_k} is invalid; expected 0 (all tokens) or a positive integer")
    if not (math.isfinite(top_p) and 0.0 < top_p <= 1.0):
        raise UserError(f"top_p={top_p} is invalid; expected a float in (0, 1]")


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """logits (B, V) -> next ids (B,). temperature 0 is greedy (arg-max)."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the tokens ranked above it already cover top_p (the first always stays).
        drop = (probs.cumsum(dim=-1) - probs) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, seed: int | None = None, use_cache: bool = True,
             on_token: Callable[[int], None] | None = None, autocast=None) -> torch.Tensor:
    """Extend idx (B, T) by max_new_tokens; returns (B, T + max_new_tokens).
    `on_token(id)` is called for each new token of the first sequence (for streaming)."""
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    was_training = model.training
    model.eval()
    device = idx.device
    generator = None
    if seed is not None and temperature > 0:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    context = model.config.context_len
    cache = model.new_cache(idx.size(0), device=device) if use_cache else None
    pending = idx[:, -context:]  # tokens not yet seen by the cache
    try:
        for _ in range(max_new_tokens):
            logits = _forward(model, pending, cache, autocast)  # (B, V)
            nxt = sample_next(logits, temperature, top_k, top_p, generator)[:, None]  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
            if on_token is not None:
                on_token(int(nxt[0, 0]))
            if cache is not None and cache.pos < context:
                pending = nxt
            else:  # the window slides: recompute it (positions shift)
                cache = None
                pending = idx[:, -context:]
    finally:
        model.train(was_training)
    return idx


def _forward(model, tokens: torch.Tensor, cache, autocast) -> torch.Tensor:
    if autocast is None:
        return model.next_logits(tokens, cache)
    with autocast():
        return model.next_logits(tokens, cache)
