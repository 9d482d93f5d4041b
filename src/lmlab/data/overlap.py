"""Held-out text found in training: for the val and test splits, how many of their windows of W
tokens occur verbatim somewhere in the training tokens (every source that trains, weight > 0).

The splits are made disjoint by construction (whole documents, or a document's tail: split.py),
so what this catches is the same text reaching both sides another way: a validation file also
listed as a training source, a corpus with duplicated documents, a test set inside a training
mixture. It is exact up to 64-bit hash collisions (about one in 10**19 per pair), and cheap:
O(N) per split with a polynomial rolling hash, the training side in chunks (memory stays small).

W covers about WINDOW_BYTES bytes of text (W = WINDOW_BYTES / bytes per token, within
[MIN_WINDOW, MAX_WINDOW]): long enough that natural text rarely repeats it by chance (a heading,
a stock phrase), short enough that a copied document is found whatever its length. GPT-3's
contamination study used 13-word windows (Brown et al. 2020, appendix C), about the same span.
"""

from __future__ import annotations

import numpy as np

WINDOW_BYTES = 100
MIN_WINDOW, MAX_WINDOW = 8, 256
CHUNK = 1 << 20  # training positions hashed at a time
_P = np.uint64(0x9E3779B97F4A7C15)  # odd, so invertible modulo 2**64
_P_INV = np.uint64(pow(int(_P), -1, 1 << 64))


def window_for(bytes_per_token: float) -> int:
    """Tokens per window: about WINDOW_BYTES bytes of text."""
    return int(min(max(round(WINDOW_BYTES / max(bytes_per_token, 1e-9)), MIN_WINDOW), MAX_WINDOW))


def _powers(base: np.uint64, n: int) -> np.ndarray:
    """base**0 .. base**(n-1) modulo 2**64 (uint64 arithmetic wraps)."""
    out = np.full(n, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


def window_hashes(tokens: np.ndarray, W: int) -> np.ndarray:
    """The hash of every window tokens[i:i+W] (sum of (t+1) * P**j, modulo 2**64), as uint64."""
    n = len(tokens) - W + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    t = np.asarray(tokens).astype(np.uint64) + np.uint64(1)  # +1: a run of id 0 still moves the hash
    prefix = np.zeros(len(t) + 1, dtype=np.uint64)
    np.cumsum(t * _powers(_P, len(t)), dtype=np.uint64, out=prefix[1:])
    # window i is P**i * (its hash): multiply by P**-i to compare windows at different positions
    return (prefix[W:W + n] - prefix[:n]) * _powers(_P_INV, n)


def found_in(held_out: np.ndarray, train_parts: list[np.ndarray], W: int) -> np.ndarray:
    """For each held-out window hash: whether some training window has the same hash."""
    keys, inverse = np.unique(held_out, return_inverse=True)
    hit = np.zeros(len(keys), dtype=bool)
    for tokens in train_parts:
        for start in range(0, max(len(tokens) - W + 1, 0), CHUNK):
            h = window_hashes(tokens[start:start + CHUNK + W - 1], W)
            at = np.searchsorted(keys, h)
            ok = at < len(keys)
            ok[ok] = keys[at[ok]] == h[ok]
            hit[at[ok]] = True
    return hit[inverse]


def held_out_overlap(splits: dict, probs: dict, bytes_per_token: float) -> dict:
    """{"window": W, "val": {source: {"windows": n, "found": k}}, "test": ...}: per held-out source,
    its windows (every position) that also occur in a training source's tokens. Per source, because
    a generated source may repeat itself by construction (counting runs); a source shorter than W
    is left out."""
    W = window_for(bytes_per_token)
    train = [np.asarray(p.real_ids()) for name, p in splits["train"].items() if probs.get(name, 0) > 0]
    out: dict = {"window": W, "window_bytes": WINDOW_BYTES}
    for split in ("val", "test"):
        for name, part in splits.get(split, {}).items():
            hashes = window_hashes(np.asarray(part.real_ids()), W)
            if len(hashes):
                out.setdefault(split, {})[name] = {"windows": int(len(hashes)),
                                                   "found": int(found_in(hashes, train, W).sum())}
    return out
