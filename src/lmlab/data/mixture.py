"""Mixture weights: the probability that a training row comes from each source.

`data.weight_by` names a rule in the WEIGHT_BY registry; each turns a source's weight and its
part (tokens and documents per row) into an unnormalized probability.
"""

from __future__ import annotations

from lmlab.errors import UserError
from lmlab.registry import Registry

WEIGHT_BY: Registry = Registry("data.weight_by")


@WEIGHT_BY.register("tokens")
def by_tokens(part, weight: float, T: int) -> float:
    """weights are shares of training tokens"""
    return weight / max(part.tokens_per_unit(T), 1e-9)


@WEIGHT_BY.register("docs")
def by_docs(part, weight: float, T: int) -> float:
    """weights are shares of training documents"""
    return weight / max(part.docs_per_unit(T), 1e-9)


@WEIGHT_BY.register("size")
def by_size(part, weight: float, T: int) -> float:
    """each source's natural share of the training tokens, times its weight"""
    return weight * part.size / max(part.tokens_per_unit(T), 1e-9)


def mixture_probs(parts: dict, weights: dict[str, float], weight_by: str, T: int) -> dict[str, float]:
    """Probability that a training row comes from each source, so that the expected share of
    training tokens (weight_by=tokens) or documents (docs) is weight / total weight, or, for
    weight_by=size, the source's share of all training tokens times its weight."""
    rule = WEIGHT_BY.get(weight_by)
    raw = {name: rule(part, weights.get(name, 0.0), T) for name, part in parts.items() if weights.get(name, 0.0) > 0}
    total = sum(raw.values())
    if total <= 0:
        raise UserError("no source with weight > 0 has training documents; nothing to train on")
    return {k: v / total for k, v in raw.items()}
