"""Statistics over seeds: mean +- 95% t-interval per variant, and each variant against a
baseline: the difference with its interval and p-value (a paired t-test by seed when both have
the same seeds, Welch's otherwise; scipy.stats), and a noise floor — the baseline's standard
deviation across seeds. A difference smaller than the noise floor is "within noise" whatever
its p-value: seed-to-seed variation of that size is what rerunning the baseline gives."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

ALPHA = 0.05


@dataclass
class Summary:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); 0 for one seed
    ci_low: float
    ci_high: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def summarize(values) -> Summary:
    """Mean and its two-sided 95% interval from the t distribution with n-1 degrees of freedom."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if len(x) < 2:
        return Summary(1, mean, math.nan, math.nan, math.nan)  # one seed: no spread to measure
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(1 - ALPHA / 2, len(x) - 1) * std / math.sqrt(len(x)))
    return Summary(len(x), mean, std, mean - half, mean + half)


@dataclass
class Comparison:
    diff: float  # variant - baseline
    ci_low: float
    ci_high: float
    p_value: float
    test: str  # "paired t" | "welch t" | "" (too few seeds)
    noise_floor: float
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)


def compare(base: dict[int, float], other: dict[int, float], lower_is_better: bool = True) -> Comparison:
    """`base` and `other` map seed -> metric. Paired by seed when the seed sets are equal."""
    from scipy import stats

    b = np.array(list(base.values()), float)
    o = np.array(list(other.values()), float)
    noise = float(b.std(ddof=1)) if len(b) > 1 else math.nan
    if len(b) < 2 or len(o) < 2:
        diff = float(o.mean() - b.mean()) if len(b) and len(o) else math.nan
        return Comparison(diff, math.nan, math.nan, math.nan, "", noise, "too few seeds")
    t_crit = lambda df: float(stats.t.ppf(1 - ALPHA / 2, df))  # noqa: E731
    if sorted(base) == sorted(other):
        d = np.array([other[s] - base[s] for s in sorted(base)])
        diff, se, df = float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))), len(d) - 1
        p = float(stats.ttest_rel([other[s] for s in sorted(base)], [base[s] for s in sorted(base)]).pvalue) \
            if se > 0 else (0.0 if diff else 1.0)
        test = "paired t"
    else:
        vb, vo = b.var(ddof=1) / len(b), o.var(ddof=1) / len(o)
        diff, se = float(o.mean() - b.mean()), math.sqrt(vb + vo)
        df = (vb + vo) ** 2 / (vb ** 2 / (len(b) - 1) + vo ** 2 / (len(o) - 1)) if se > 0 else 1
        p = float(stats.ttest_ind(o, b, equal_var=False).pvalue) if se > 0 else (0.0 if diff else 1.0)
        test = "welch t"
    half = t_crit(df) * se
    return Comparison(diff, diff - half, diff + half, p, test, noise, verdict(diff, p, noise, lower_is_better))


def verdict(diff: float, p: float, noise: float, lower_is_better: bool = True) -> str:
    if math.isfinite(noise) and abs(diff) <= noise:
        return "within noise"
    if not (p < ALPHA):
        return "not significant"
    better = diff < 0 if lower_is_better else diff > 0
    return "better" if better else "worse"
