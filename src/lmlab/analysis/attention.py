"""Attention statistics per layer and head, from `blocks.{i}.attn.hook_pattern`.

For each query only its causally allowed, real (non-pad) keys count, and pad queries are left out:
  entropy       -sum p log p over the allowed keys, in nats, averaged over queries
  entropy_norm  entropy / log(#allowed keys), averaged over queries with at least 2 allowed keys
                (early queries have few keys, so raw entropy grows with position; this does not)
  sparsity      the fraction of allowed weights below `threshold` (default 1e-3), pooled
  max_weight    the largest weight of each query, averaged
  mean_distance sum_j p_ij (i - j): how far back a head looks, in tokens, averaged over queries
Per-layer and whole-model means are plain means over heads; `correlation` is Pearson's r between
per-head entropy and sparsity (LLmini reports about -0.9). Statistics are accumulated inside the
hook, one layer at a time, so (B, H, T, T) patterns of all layers are never held together.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lmlab.errors import UserError
from lmlab.model.hooks import hook_points, hooks
from lmlab.progress import track

STATS = ("entropy", "entropy_norm", "sparsity", "max_weight", "mean_distance")
PATTERN = "blocks.*.attn.hook_pattern"


def attention_layers(model) -> int:
    """Number of layers with an attention pattern; a one-line error for models without attention."""
    n = sum(name.endswith("attn.hook_pattern") for name in hook_points(model))
    if n == 0:
        arch = getattr(getattr(model, "config", None), "arch", type(model).__name__)
        raise UserError(f"model.arch={arch!r} has no attention (no blocks.*.attn.hook_pattern); attention "
                        f"analysis needs model.arch='transformer'")
    return n


class PatternAccumulator:
    """Running sums of the statistics for each (layer, head)."""

    def __init__(self, n_layer: int, n_head: int, threshold: float):
        self.threshold = threshold
        self.sums = {k: torch.zeros(n_layer, n_head, dtype=torch.float64) for k in
                     ("entropy", "entropy_norm", "max_weight", "mean_distance", "below", "allowed", "queries",
                      "queries_norm")}

    def add(self, layer: int, pattern: torch.Tensor, real: torch.Tensor) -> None:
        """pattern (B, H, Tq, Tk) with Tq == Tk; real (B, T) True at real tokens."""
        p = pattern.detach().double()
        B, H, T, _ = p.shape
        real = real.to(p.device)
        causal = torch.ones(T, T, dtype=torch.bool, device=p.device).tril()  # (T, T)
        allowed = causal[None] & real[:, None, :] & real[:, :, None]  # (B, Tq, Tk)
        p = p * allowed[:, None]  # (B, H, T, T) only allowed weights
        n_keys = allowed.sum(-1).double()  # (B, T), 0 for pad queries
        query = n_keys > 0  # (B, T)
        ent = -torch.xlogy(p, p).sum(-1)  # (B, H, T)
        log_keys = torch.log(n_keys.clamp(min=1))[:, None]  # (B, 1, T)
        norm_q = (n_keys > 1)[:, None].expand(B, H, T)
        dist = (torch.arange(T, device=p.device)[:, None] - torch.arange(T, device=p.device)[None, :]).double()
        s, q = self.sums, query[:, None].expand(B, H, T)
        s["entropy"][layer] += (ent * q).sum((0, 2)).cpu()
        s["entropy_norm"][layer] += torch.where(norm_q, ent / log_keys.clamp(min=1e-12), 0.0).sum((0, 2)).cpu()
        s["max_weight"][layer] += (p.amax(-1) * q).sum((0, 2)).cpu()
        s["mean_distance"][layer] += ((p * dist).sum(-1) * q).sum((0, 2)).cpu()
        s["below"][layer] += ((p < self.threshold) & allowed[:, None]).sum((0, 2, 3)).double().cpu()
        s["allowed"][layer] += allowed.sum().double().cpu().expand(H)
        s["queries"][layer] += query.sum().double().cpu().expand(H)
        s["queries_norm"][layer] += norm_q[:, 0].sum().double().cpu().expand(H)

    def result(self) -> dict[str, np.ndarray]:
        s = self.sums
        q, qn = s["queries"].clamp(min=1), s["queries_norm"].clamp(min=1)
        return {"entropy": (s["entropy"] / q).numpy(), "entropy_norm": (s["entropy_norm"] / qn).numpy(),
                "sparsity": (s["below"] / s["allowed"].clamp(min=1)).numpy(),
                "max_weight": (s["max_weight"] / q).numpy(), "mean_distance": (s["mean_distance"] / q).numpy()}


@torch.no_grad()
def attention_stats(model, windows, threshold: float = 1e-3, batch_size: int = 8, device=None,
                    progress: bool = False) -> dict:
    """Statistics of every head over `windows` (a `Windows`, or an iterable of (x, real) pairs).
    Returns per-head arrays (L, H), per-layer means, model means and the entropy-sparsity r."""
    if not 0 < threshold < 1:
        raise UserError(f"--threshold {threshold} is not valid; expected a float in (0, 1)")
    n_layer, n_head = attention_layers(model), model.config.n_head
    acc = PatternAccumulator(n_layer, n_head, threshold)
    device = device or next(model.parameters()).device
    pairs = _pairs(windows, batch_size)
    current = {}

    def collect(pattern, name):
        acc.add(int(name.split(".")[1]), pattern, current["real"])

    was_training = model.training
    model.eval()
    try:
        with hooks(model, {PATTERN: collect}):
            for x, real in _progress(pairs, progress):
                current["real"] = real
                body(model)(x.to(device))
    finally:
        model.train(was_training)
    return summarize(acc.result(), threshold)


def body(model):
    """The forward that reaches every attention layer: the transformer's trunk (embeddings and
    blocks) when it has one, skipping the (T x V) head that patterns do not need."""
    return getattr(model, "trunk", model)


def _pairs(windows, batch_size: int) -> list:
    if hasattr(windows, "batches"):
        return [(w.x, w.real()) for w in windows.batches(batch_size)]
    return [(x, real if real is not None else torch.ones_like(x, dtype=torch.bool)) for x, real in windows]


def _progress(items, enabled: bool):
    if not enabled:
        return items
    return track(items, desc="attention", unit="batch")


def summarize(per_head: dict[str, np.ndarray], threshold: float) -> dict:
    """Per-head arrays -> the full result: heads, layer means, model means, correlation."""
    return {"threshold": threshold, "per_head": {k: v.tolist() for k, v in per_head.items()},
            "layers": [{"layer": i, **{k: float(per_head[k][i].mean()) for k in STATS}}
                       for i in range(per_head["entropy"].shape[0])],
            "model": {k: float(per_head[k].mean()) for k in STATS},
            "correlation": {"entropy_sparsity_pearson": _pearson(per_head["entropy"], per_head["sparsity"]),
                            "entropy_norm_sparsity_pearson": _pearson(per_head["entropy_norm"], per_head["sparsity"])}}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r over heads (scipy); NaN when there are too few heads or a constant column."""
    from scipy.stats import pearsonr

    a, b = a.ravel(), b.ravel()
    return float(pearsonr(a, b)[0]) if a.size > 2 and a.std() > 0 and b.std() > 0 else float("nan")


def head_rows(stats: dict) -> list[dict]:
    """One row per (layer, head): the CSV table."""
    ph = stats["per_head"]
    L, H = len(ph["entropy"]), len(ph["entropy"][0])
    return [{"layer": i, "head": h, **{k: ph[k][i][h] for k in STATS}} for i in range(L) for h in range(H)]


def format_table(stats: dict) -> str:
    """The LLmini table: per-layer mean entropy (nats and normalised) and sparsity, then the model row."""
    lines = [f"{'layer':>5} {'entropy':>9} {'ent/logk':>9} {'sparsity':>9} {'max w':>7} {'dist':>7}",
             "      (nats)   (normalised by log #allowed keys)  (sparsity: weights < "
             f"{stats['threshold']:g})"]
    for row in stats["layers"] + [{"layer": "all", **stats["model"]}]:
        lines.append(f"{row['layer']:>5} {row['entropy']:>9.3f} {row['entropy_norm']:>9.3f} {row['sparsity']:>9.3f} "
                     f"{row['max_weight']:>7.3f} {row['mean_distance']:>7.2f}")
    r = stats["correlation"]["entropy_sparsity_pearson"]
    lines.append(f"entropy-sparsity correlation over heads (Pearson r): {r:.3f}" if math.isfinite(r)
                 else "entropy-sparsity correlation: undefined (constant statistics)")
    return "\n".join(lines)
