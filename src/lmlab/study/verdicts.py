"""Verdicts computed from statistics over seeds, never written by hand.

A claim compares quantities measured once per seed. For two quantities a and b:

  noise floor   the seed-to-seed spread: sqrt((var_a + var_b) / 2), sample variances
  margin        the smallest difference that matters: max(noise floor, rel_margin x |mean of b|)
                unless the claim gives one
  interval      95% t-interval of a - b (paired by seed when both have the same seeds, else Welch)
  detectable    the smallest |a - b| this many seeds would find with 80% power at alpha 0.05:
                (t(1 - alpha/2) + t(0.8)) x standard error — the study's resolution

and the verdict of a directional claim (a < b, or a > b):

  holds           p < 0.05, a - b on the claimed side and larger than the noise floor
  does not hold   p < 0.05, on the other side and larger than the noise floor
  within noise    the whole interval lies inside +-margin: any effect is smaller than what matters
  unresolved      none of these: the study cannot tell at this budget (see `detectable`)

`same` (a ~ b) holds when the interval lies inside +-margin and does not hold when the
difference is significant and larger than the margin. `near` (a ~ value) compares a's interval
with value +- tolerance. With one seed there is no noise floor: comparisons are unresolved.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

ALPHA = 0.05
POWER = 0.8
REL_MARGIN = 0.01  # 1% of the reference value: differences below it are not findings

HOLDS, FAILS, NOISE, UNRESOLVED, NOT_TESTED = "holds", "does not hold", "within noise", "unresolved", "not tested"
VERDICTS = (HOLDS, FAILS, NOISE, UNRESOLVED, NOT_TESTED)


@dataclass
class PairStats:
    """a - b over seeds: the numbers a verdict is computed from."""

    n: int
    a_mean: float
    b_mean: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    noise_floor: float
    margin: float
    detectable: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Verdict:
    verdict: str
    why: str
    stats: list[dict] = field(default_factory=list)  # one PairStats (or near stats) per comparison

    def to_dict(self) -> dict:
        return asdict(self)


def pair_stats(a: dict[int, float], b: dict[int, float], margin: float | None = None,
               rel_margin: float = REL_MARGIN) -> PairStats:
    """Statistics of a - b; `a` and `b` map seed -> value (non-finite values dropped)."""
    from scipy import stats

    a = {s: float(v) for s, v in a.items() if v is not None and math.isfinite(v)}
    b = {s: float(v) for s, v in b.items() if v is not None and math.isfinite(v)}
    xa, xb = np.array(list(a.values())), np.array(list(b.values()))
    a_mean = float(xa.mean()) if len(xa) else math.nan
    b_mean = float(xb.mean()) if len(xb) else math.nan
    diff = a_mean - b_mean
    n = min(len(xa), len(xb))
    if len(xa) < 2 or len(xb) < 2:
        return PairStats(n, a_mean, b_mean, diff, math.nan, math.nan, math.nan, "", math.nan, math.nan, math.nan)
    noise = math.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2)
    if sorted(a) == sorted(b):
        d = np.array([a[s] - b[s] for s in sorted(a)])
        se, df, test = float(d.std(ddof=1) / math.sqrt(len(d))), len(d) - 1, "paired t"
        p = float(stats.ttest_rel([a[s] for s in sorted(a)], [b[s] for s in sorted(a)]).pvalue) if se > 0 else None
    else:
        va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
        se, test = math.sqrt(va + vb), "welch t"
        df = (va + vb) ** 2 / (va ** 2 / (len(xa) - 1) + vb ** 2 / (len(xb) - 1)) if se > 0 else 1
        p = float(stats.ttest_ind(xa, xb, equal_var=False).pvalue) if se > 0 else None
    if p is None:  # no spread at all: the difference is exact
        p = 0.0 if diff else 1.0
    t_crit = float(stats.t.ppf(1 - ALPHA / 2, df))
    half = t_crit * se
    detectable = (t_crit + float(stats.t.ppf(POWER, df))) * se
    margin = margin if margin is not None else max(noise, rel_margin * abs(b_mean))
    return PairStats(n, a_mean, b_mean, diff, diff - half, diff + half, p, test, noise, margin, detectable)


def order_verdict(st: PairStats, sign: int = -1) -> Verdict:
    """The claim a < b (sign -1) or a > b (sign +1)."""
    if st.n < 2 or not math.isfinite(st.ci_low):
        return Verdict(UNRESOLVED, f"{st.n} seed(s): no noise floor to compare with", [st.to_dict()])
    beyond_noise = abs(st.diff) > st.noise_floor
    if st.p_value < ALPHA and beyond_noise:
        side = HOLDS if st.diff * sign > 0 else FAILS
        return Verdict(side, f"a - b = {st.diff:+.4g}, p = {st.p_value:.2g}, beyond the noise floor "
                             f"{st.noise_floor:.3g}", [st.to_dict()])
    return _noise_or_unresolved(st)


def same_verdict(st: PairStats) -> Verdict:
    """The claim a ~ b (no difference that matters)."""
    if st.n < 2 or not math.isfinite(st.ci_low):
        return Verdict(UNRESOLVED, f"{st.n} seed(s): no noise floor to compare with", [st.to_dict()])
    if -st.margin <= st.ci_low and st.ci_high <= st.margin:
        return Verdict(HOLDS, f"95% interval [{st.ci_low:+.3g}, {st.ci_high:+.3g}] inside +-{st.margin:.3g}",
                       [st.to_dict()])
    if st.p_value < ALPHA and abs(st.diff) > st.margin:
        return Verdict(FAILS, f"a - b = {st.diff:+.4g}, p = {st.p_value:.2g}, beyond the margin {st.margin:.3g}",
                       [st.to_dict()])
    return Verdict(UNRESOLVED, f"interval [{st.ci_low:+.3g}, {st.ci_high:+.3g}] reaches past +-{st.margin:.3g}; "
                               f"this study detects |a - b| >= {st.detectable:.3g}", [st.to_dict()])


def _noise_or_unresolved(st: PairStats) -> Verdict:
    if -st.margin <= st.ci_low and st.ci_high <= st.margin:
        return Verdict(NOISE, f"95% interval [{st.ci_low:+.3g}, {st.ci_high:+.3g}] inside +-{st.margin:.3g} "
                              f"(noise floor {st.noise_floor:.3g})", [st.to_dict()])
    return Verdict(UNRESOLVED, f"a - b = {st.diff:+.4g} (p = {st.p_value:.2g}); this study detects "
                               f"|a - b| >= {st.detectable:.3g} (noise floor {st.noise_floor:.3g})", [st.to_dict()])


def near_verdict(values: dict[int, float], value: float, tolerance: float) -> Verdict:
    """The claim a ~ value, within +-tolerance x |value|: the interval of a's mean inside the band
    holds, outside it does not hold; one seed compares its single value."""
    from lmlab.study.stats import summarize

    s = summarize(list(values.values()))
    band = abs(value) * tolerance
    low, high = value - band, value + band
    info = {"n": s.n, "mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high, "value": value, "band": [low, high]}
    if s.n == 0:
        return Verdict(NOT_TESTED, "no measurement", [info])
    if s.n == 1 or not math.isfinite(s.ci_low):
        inside = low <= s.mean <= high
        return Verdict(HOLDS if inside else FAILS, f"{s.mean:.4g} {'inside' if inside else 'outside'} "
                       f"[{low:.4g}, {high:.4g}] (one seed)", [info])
    if low <= s.ci_low and s.ci_high <= high:
        return Verdict(HOLDS, f"interval [{s.ci_low:.4g}, {s.ci_high:.4g}] inside [{low:.4g}, {high:.4g}]", [info])
    if s.ci_high < low or s.ci_low > high:
        return Verdict(FAILS, f"interval [{s.ci_low:.4g}, {s.ci_high:.4g}] outside [{low:.4g}, {high:.4g}]", [info])
    return Verdict(UNRESOLVED, f"interval [{s.ci_low:.4g}, {s.ci_high:.4g}] overlaps the edge of "
                               f"[{low:.4g}, {high:.4g}]", [info])


def combine(parts: list[Verdict]) -> Verdict:
    """A claim made of several comparisons (a chain, every epoch): it does not hold if one part
    does not; it holds if all do; within noise if every part holds or is within noise; else
    unresolved. A part not tested makes the whole not tested."""
    kinds = [p.verdict for p in parts]
    stats = [s for p in parts for s in p.stats]
    why = "; ".join(p.why for p in parts)
    if not parts or NOT_TESTED in kinds:
        return Verdict(NOT_TESTED, next((p.why for p in parts if p.verdict == NOT_TESTED), "nothing to compare"),
                       stats)
    if FAILS in kinds:
        return Verdict(FAILS, why, stats)
    if all(k == HOLDS for k in kinds):
        return Verdict(HOLDS, why, stats)
    if all(k in (HOLDS, NOISE) for k in kinds):
        return Verdict(NOISE, why, stats)
    return Verdict(UNRESOLVED, why, stats)
