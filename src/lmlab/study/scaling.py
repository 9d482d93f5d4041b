"""Scaling fits: L(N) = a * N^(-alpha) + c by nonlinear least squares (scipy.optimize.curve_fit),
against non-embedding parameters (Kaplan et al. 2020) or training FLOPs. The fit runs on
N / N_min so a stays O(1); alpha's 95% interval comes from the fit's covariance and the t
distribution with (points - 3) degrees of freedom (nan with 3 points: nothing left to estimate it)."""

from __future__ import annotations

import math

import numpy as np


def power_law(n, a, alpha, c):
    return a * np.power(n, -alpha) + c


def fit_power_law(n, loss) -> dict:
    from scipy import optimize, stats

    n, loss = np.asarray(n, float), np.asarray(loss, float)
    ok = np.isfinite(n) & np.isfinite(loss) & (n > 0)
    n, loss = n[ok], loss[ok]
    if len(np.unique(n)) < 3:
        return {"points": int(len(n)), "error": "a power law with an offset needs at least 3 sizes"}
    scale = float(n.min())
    x = n / scale
    p0 = (max(loss.max() - loss.min(), 1e-3), 0.5, max(loss.min() - 0.1 * (loss.max() - loss.min()), 0.0))
    try:
        (a, alpha, c), cov = optimize.curve_fit(power_law, x, loss, p0=p0, bounds=([0, 0, 0], [np.inf, 5, np.inf]),
                                                maxfev=20000)
    except (RuntimeError, ValueError) as err:
        return {"points": int(len(n)), "error": f"fit failed: {err}"}
    dof = len(n) - 3
    se = float(np.sqrt(np.diag(cov))[1]) if dof > 0 and np.all(np.isfinite(cov)) else math.nan
    half = float(stats.t.ppf(0.975, dof)) * se if dof > 0 and math.isfinite(se) else math.nan
    a_orig = float(a * scale ** alpha)  # back to L = a' N^-alpha + c in the original units
    return {"points": int(len(n)), "a": a_orig, "alpha": float(alpha), "alpha_ci": [alpha - half, alpha + half],
            "c": float(c), "rmse": float(np.sqrt(np.mean((power_law(x, a, alpha, c) - loss) ** 2)))}
