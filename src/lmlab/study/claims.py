"""A seed's claims as data: predicates over a study's measurements, each with a computed verdict.

A claim names quantities as "VARIANT" (read with the claim's `metric`) or "VARIANT:METRIC", and
a test from TESTS:

  less / greater           a < b  /  a > b; with `ratio` r, a < r x b  /  a > r x b
                           ("a more than halves b": less, ratio 0.5)
  increasing / decreasing  chain[0] < chain[1] < ...  /  chain[0] > chain[1] > ...
  same                     a ~ b: no difference beyond the margin
  near                     a ~ value, within +-tolerance (relative)

`metrics = [...]` repeats the claim for each metric (every epoch's val loss) and combines the
verdicts (lmlab.study.verdicts.combine). The verdict is computed from the per-seed measurements
(lmlab.study.measure); the claim's `seed` field only quotes the seed's evidence for the page.

    [[study.claims]]
    id = "bigger_is_better"
    text = "larger models reach a lower validation loss at the same number of steps"
    seed = "mini-gpt.md, Results: val perplexity small 6.1 > medium 4.9 > large 4.4"
    test = "decreasing"
    chain = ["small", "medium", "large"]
    metric = "best_val_loss"
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from lmlab.errors import UserError
from lmlab.registry import Registry
from lmlab.study.verdicts import (FAILS, NOT_TESTED, Verdict, combine, near_verdict, order_verdict, pair_stats,
                                  same_verdict)

Measurements = dict[tuple[str, str], dict[int, float]]  # (variant, metric) -> seed -> value


@dataclass
class Claim:
    id: str
    text: str  # the claim in words
    test: str  # a TESTS name
    a: str = ""
    b: str = ""
    chain: list[str] = field(default_factory=list)
    metric: str = "best_val_loss"
    metrics: list[str] = field(default_factory=list)  # the claim for each metric, combined
    value: float | None = None  # near: the reference value
    tolerance: float = 0.1  # near: relative half-width of the band
    ratio: float = 1.0  # less/greater/chains compare a with ratio x b ("more than halves": less, 0.5)
    margin: float | None = None  # the smallest difference that matters (default: noise floor or 1%)
    seed: str = ""  # the seed's evidence: the number(s) it reports and where

    def to_dict(self) -> dict:
        default_ratio = {"ratio": 1.0}
        return {k: v for k, v in asdict(self).items() if v not in (None, [], "") and default_ratio.get(k) != v}

    def quantities(self) -> list[str]:
        return [q for q in (self.a, self.b, *self.chain) if q]

    def each_metric(self) -> list[str]:
        return list(self.metrics) or [self.metric]


@dataclass
class ClaimTest:
    fn: Callable[[Claim, Callable[[str, str], dict[int, float]], str], Verdict]
    needs: tuple[str, ...]  # the claim fields it reads


TESTS: Registry = Registry("claim tests", config_field=False, noun="claim test")


def claim_test(name: str, doc: str, needs: tuple[str, ...]):
    def add(fn):
        TESTS.register(name, doc)(ClaimTest(fn, needs))
        return fn
    return add


def _ordered(pairs: list[tuple[str, str]], claim: Claim, read, metric: str, sign: int) -> Verdict:
    """Each pair (x, y) ordered as x < ratio * y (sign -1) or x > ratio * y (sign +1)."""
    def scaled(q: str) -> dict[int, float]:
        return {s: claim.ratio * v for s, v in read(q, metric).items()}

    return combine([order_verdict(pair_stats(read(x, metric), scaled(y), claim.margin), sign) for x, y in pairs])


@claim_test("less", "a < ratio x b", ("a", "b"))
def _less(claim: Claim, read, metric: str) -> Verdict:
    return _ordered([(claim.a, claim.b)], claim, read, metric, -1)


@claim_test("greater", "a > ratio x b", ("a", "b"))
def _greater(claim: Claim, read, metric: str) -> Verdict:
    return _ordered([(claim.a, claim.b)], claim, read, metric, +1)


@claim_test("increasing", "chain[0] < chain[1] < ...", ("chain",))
def _increasing(claim: Claim, read, metric: str) -> Verdict:
    return _ordered(list(zip(claim.chain, claim.chain[1:])), claim, read, metric, -1)


@claim_test("decreasing", "chain[0] > chain[1] > ...", ("chain",))
def _decreasing(claim: Claim, read, metric: str) -> Verdict:
    return _ordered(list(zip(claim.chain, claim.chain[1:])), claim, read, metric, +1)


@claim_test("same", "a ~ b within the margin", ("a", "b"))
def _same(claim: Claim, read, metric: str) -> Verdict:
    return same_verdict(pair_stats(read(claim.a, metric), read(claim.b, metric), claim.margin))


@claim_test("near", "a ~ value within +-tolerance", ("a", "value"))
def _near(claim: Claim, read, metric: str) -> Verdict:
    return near_verdict(read(claim.a, metric), float(claim.value), claim.tolerance)


def split(quantity: str, metric: str) -> tuple[str, str]:
    variant, _, own = quantity.partition(":")
    return variant, own or metric


class Missing(Exception):
    """A quantity without measurements (its variant failed or an instrument did not run)."""


def evaluate(claim: Claim, measured: Measurements, failed: set[str] = frozenset()) -> Verdict:
    """The claim's verdict from `measured`; a quantity of a failed variant makes it not tested."""

    def read(quantity: str, metric: str) -> dict[int, float]:
        key = split(quantity, metric)
        if key[0] in failed:
            raise Missing(f"variant {key[0]} failed")
        values = measured.get(key, {})
        if not values:
            raise Missing(f"no measurement of {key[0]}:{key[1]}")
        return values

    test = TESTS.get(claim.test).fn
    try:
        return combine([test(claim, read, m) for m in claim.each_metric()])
    except Missing as why:
        return Verdict(NOT_TESTED, str(why))


def claim_from_dict(values: dict, where: str) -> Claim:
    known = set(Claim.__dataclass_fields__)
    if not isinstance(values, dict):
        raise UserError(f"{where}: a claim must be a table with {', '.join(sorted(known))}")
    unknown = set(values) - known
    if unknown:
        raise UserError(f"{where}: unknown claim field(s) {', '.join(sorted(unknown))}; valid: "
                        f"{', '.join(sorted(known))}")
    for need in ("id", "text", "test"):
        if not values.get(need):
            raise UserError(f"{where}: a claim needs `{need}`")
    claim = Claim(**values)
    for name in TESTS.get(claim.test).needs:
        if getattr(claim, name) in (None, "", []):
            raise UserError(f"{where}: claim {claim.id} ({claim.test}) needs `{name}`")
    if not (isinstance(claim.ratio, (int, float)) and claim.ratio > 0):
        raise UserError(f"{where}: claim {claim.id}: ratio {claim.ratio!r} must be a positive number")
    if claim.chain and len(claim.chain) < 2:
        raise UserError(f"{where}: claim {claim.id}: a chain needs at least two quantities")
    return claim


def check_claims(claims: list[Claim], variants: list[str], metrics: set[str], where: str) -> None:
    """Every claim names variants the study has and metrics it measures: one line otherwise."""
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise UserError(f"{where}: claim ids repeat ({', '.join(sorted({i for i in ids if ids.count(i) > 1}))})")
    for c in claims:
        for metric in c.each_metric():
            for q in c.quantities():
                variant, m = split(q, metric)
                if variant not in variants:
                    raise UserError(f"{where}: claim {c.id} names variant {variant!r}; the study's variants: "
                                    f"{', '.join(variants)}")
                if m not in metrics:
                    raise UserError(f"{where}: claim {c.id} names metric {m!r}, which the study does not measure; "
                                    f"valid: {', '.join(sorted(metrics))}")


def verdict_rows(claims: list[Claim], measured: Measurements, failed: set[str] = frozenset()) -> list[dict]:
    """One row per claim: the claim, the seed's evidence, lmlab's verdict and why."""
    rows = []
    for c in claims:
        v = evaluate(c, measured, failed)
        why = f"{v.why} (variant failed)" if v.verdict == NOT_TESTED and "failed" in v.why else v.why
        rows.append({"id": c.id, "claim": c.text, "seed": c.seed, "verdict": v.verdict, "why": why,
                     "measured": measured_text(v) + (f" (b x {c.ratio:g})" if c.ratio != 1.0 else ""),
                     "stats": v.stats})
    return rows


def measured_text(v: Verdict) -> str:
    """lmlab's measurement in one cell: each comparison's difference and interval."""
    parts = []
    for s in v.stats:
        if "diff" in s and s["n"] < 2:
            parts.append(f"{s['a_mean']:.4g} vs {s['b_mean']:.4g}: {s['diff']:+.3g}, n {s['n']}")
        elif "diff" in s:
            parts.append(f"{s['a_mean']:.4g} vs {s['b_mean']:.4g}: {s['diff']:+.3g} "
                         f"[{s['ci_low']:+.3g}, {s['ci_high']:+.3g}], p {s['p_value']:.2g}, n {s['n']}")
        elif "mean" in s and s["n"] < 2:
            parts.append(f"{s['mean']:.4g} vs {s['value']:.4g}, n {s['n']}")
        elif "mean" in s:
            parts.append(f"{s['mean']:.4g} [{s['ci_low']:.4g}, {s['ci_high']:.4g}] vs {s['value']:.4g}, n {s['n']}")
    return "; ".join(parts)


def tally(rows: list[dict]) -> str:
    counts = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    return ", ".join(f"{n} {k}" for k, n in counts.items())


__all__ = ["Claim", "TESTS", "FAILS", "evaluate", "check_claims", "claim_from_dict", "verdict_rows", "tally"]
