"""Held-out metrics from one pass over evaluation windows.

loss         mean next-token cross-entropy (nats per token) over scored tokens
perplexity   exp(loss)
accuracy     fraction of tokens whose arg-max prediction is the target
bits_per_byte  total nats / ln 2 / total UTF-8 bytes of the scored targets: comparable
             across vocabularies (special tokens count 0 bytes)
bits_per_char  the same per character, for character-level tokenizers
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from lmlab.data.batches import eval_windows


@torch.no_grad()
def evaluate(model, tokens: torch.Tensor, tokenizer, context_len: int, batch_size: int,
             max_tokens: int = 0, device: torch.device | str = "cpu", autocast=None) -> dict[str, float]:
    byte_len = torch.as_tensor(tokenizer.token_byte_lengths(), dtype=torch.float64)
    nats = correct = count = n_bytes = 0.0
    was_training = model.training
    model.eval()
    try:
        for x, y in eval_windows(tokens, batch_size, context_len, max_tokens):
            with autocast() if autocast else contextlib.nullcontext():
                logits, _ = model(x.to(device))
            logits = logits.float()
            y_dev = y.to(device)
            nats += F.cross_entropy(logits.flatten(0, 1), y_dev.flatten(), reduction="sum").item()
            correct += (logits.argmax(-1) == y_dev).sum().item()
            count += y.numel()
            n_bytes += byte_len[y].sum().item()
    finally:
        model.train(was_training)
    return summarize(nats, correct, count, n_bytes, getattr(tokenizer, "is_char_level", False))


def summarize(nats: float, correct: float, count: float, n_bytes: float, char_level: bool) -> dict[str, float]:
    loss = nats / max(count, 1)
    out = {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "accuracy": correct / max(count, 1),
           "bits_per_byte": nats / math.log(2) / max(n_bytes, 1), "tokens": int(count)}
    if char_level:
        out["bits_per_char"] = loss / math.log(2)
    return out
