"""Held-out metrics from one pass over evaluation windows.

loss         mean next-token cross-entropy (nats per token) over scored tokens
perplexity   exp(loss)
accuracy     fraction of tokens whose arg-max prediction is the target
bits_per_byte  total nats / ln 2 / total UTF-8 bytes of the scored targets: comparable
             across vocabularies (special tokens count 0 bytes). The bytes come from the token ids
             (the text is not kept), so a char tokenizer's <unk> counts 1 byte whatever character it
             replaced: exact only for tokenizers without unknown input
bits_per_char  the same per character, for character-level tokenizers
pad_targets  (padded layouts, tokenizers with an end-of-text id) scored targets that are padding: a
             pad predicted after a pad. Always 0 unless data.score_pads is set; recorded as the
             evidence lmlab's sanity check ("pads never scored") reads
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from lmlab.data.layout import Rows, Stream


def as_parts(data) -> dict:
    """A token array, one part (`Stream` / `Rows`) or {source: part}, as {source: part}."""
    if isinstance(data, dict):
        return data
    if isinstance(data, (Stream, Rows)):
        return {"all": data}
    array = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    return {"all": Stream(array)}


@torch.no_grad()
def evaluate(model, data, tokenizer, context_len: int, batch_size: int,
             max_tokens: int = 0, device: torch.device | str = "cpu", autocast=None) -> dict:
    """Metrics over `data` (a token array, a part, or {source: part}); with several sources also
    `by_source`: each one's metrics. `max_tokens` is shared in proportion to the sources' sizes."""
    parts = as_parts(data)
    total = sum(p.real_tokens for p in parts.values()) or 1
    byte_len = torch.as_tensor(tokenizer.token_byte_lengths(), dtype=torch.float64)
    char_level = getattr(tokenizer, "is_char_level", False)
    pad_id = getattr(tokenizer, "eos_id", None)  # the pad and chunk layouts pad with end-of-text
    sums = {}
    was_training = model.training
    model.eval()
    try:
        for name, part in parts.items():
            cap = max(int(max_tokens * part.real_tokens / total), 1) if max_tokens else 0
            sums[name] = _score(model, part.eval_batches(batch_size, context_len, cap), byte_len, device, autocast,
                                pad_id)
    finally:
        model.train(was_training)
    padded = [v.pop() for v in sums.values()]  # pad targets per source; None where no batch had a mask
    out = with_pads(summarize(*np.sum(list(sums.values()), axis=0), char_level), padded)
    if len(parts) > 1:
        out["by_source"] = {name: with_pads(summarize(*v, char_level), [p])
                            for (name, v), p in zip(sums.items(), padded)}
    return out


def with_pads(metrics: dict, padded: list) -> dict:
    """`pad_targets` added where some batch was padded (a masked layout): the sum over sources."""
    known = [p for p in padded if p is not None]
    return {**metrics, "pad_targets": int(sum(known))} if known else metrics


def _pad_targets(x, y, mask, pad_id) -> int:
    """Scored targets that are padding: a pad after a pad (a real document ends in one end-of-text)."""
    return int((mask & (x == pad_id) & (y == pad_id)).sum())


def _score(model, batches, byte_len, device, autocast, pad_id=None) -> list:
    """[nats, correct, count, bytes, pad targets (None without masks or a pad id)] over `batches`."""
    nats = correct = count = n_bytes = 0.0
    pads = None
    for x, y, mask in batches:
        if mask is not None and pad_id is not None:
            pads = (pads or 0) + _pad_targets(x, y, mask, pad_id)
        y_dev = y.to(device)
        with autocast() if autocast else contextlib.nullcontext():
            per_token, hit = model.token_scores(x.to(device), y_dev)  # (B, T) each
        per_token, hit = per_token.float().flatten(), hit.flatten()
        tok_bytes = byte_len[y].flatten()
        if mask is not None:
            m = mask.flatten()
            per_token, hit, tok_bytes = per_token[m.to(device)], hit[m.to(device)], tok_bytes[m]
        nats += per_token.sum().item()
        correct += hit.sum().item()
        count += per_token.numel()
        n_bytes += tok_bytes.sum().item()
    return [nats, correct, count, n_bytes, pads]


def summarize(nats: float, correct: float, count: float, n_bytes: float, char_level: bool) -> dict[str, float]:
    loss = nats / max(count, 1)
    out = {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "accuracy": correct / max(count, 1),
           "bits_per_byte": nats / math.log(2) / max(n_bytes, 1), "tokens": int(count)}
    if char_level:
        out["bits_per_char"] = loss / math.log(2)
    return out
