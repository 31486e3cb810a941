"""Estimates of a mean or a ratio per variant, and the effect of one variant against another.

A variant's metric is summarised as an :class:`Estimate` (point value, its sampling variance,
units, degrees of freedom); :func:`effect` compares two of them with a normal or Welch t
interval, absolute and relative. Ratios of per-unit sums (average order value = revenue /
orders, with the shopper as unit) get their variance from the delta method, since the orders
of one shopper are not independent draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Estimate:
    """A variant's metric: point value, variance of that value, units behind it.

    ``df`` is the degrees of freedom of the variance (``n - 1`` for a sample mean), or
    ``math.inf`` when the variance comes from a large-sample approximation (delta method).
    ``unit_var`` is the per-unit variance (``var * n``), used to plan sample sizes.
    """

    value: float
    var: float
    n: int
    df: float = math.inf

    @property
    def se(self) -> float:
        """Standard error of :attr:`value`."""
        return math.sqrt(max(self.var, 0.0))

    @property
    def unit_var(self) -> float:
        """Variance of one unit's contribution."""
        return self.var * self.n


@dataclass(frozen=True)
class Effect:
    """A treatment variant against the control, absolute and relative, with intervals.

    ``relative`` is ``absolute / control`` and its interval comes from the delta method;
    it is ``None`` when the control value is zero (a relative change is then undefined).
    """

    control: float
    treatment: float
    absolute: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    relative: float | None
    rel_ci_low: float | None
    rel_ci_high: float | None

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero."""
        return self.ci_low > 0.0 or self.ci_high < 0.0


def mean_estimate(x: npt.ArrayLike) -> Estimate:
    """The sample mean of ``x`` with its variance ``s² / n``.

    Parameters
    ----------
    x:
        One value per unit (shopper); at least two values.

    Raises
    ------
    ValueError
        If ``x`` holds fewer than two values.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.shape[0] < 2:
        raise ValueError(f"a mean needs at least 2 units, got {a.shape[0]}")
    n = int(a.shape[0])
    return Estimate(float(a.mean()), float(a.var(ddof=1)) / n, n, float(n - 1))


def ratio_estimate(num: npt.ArrayLike, den: npt.ArrayLike) -> Estimate:
    """``sum(num) / sum(den)`` with its delta-method variance, the unit being one row.

    ``Var(R) ≈ (s²_num − 2 R s_num,den + R² s²_den) / (n · mean(den)²)``.

    Parameters
    ----------
    num, den:
        Per-unit numerator and denominator (revenue and orders of each shopper).

    Raises
    ------
    ValueError
        If fewer than two units, or the denominators sum to zero.
    """
    y = np.asarray(num, dtype=np.float64)
    d = np.asarray(den, dtype=np.float64)
    n = int(y.shape[0])
    if n < 2:
        raise ValueError(f"a ratio needs at least 2 units, got {n}")
    md = float(d.mean())
    if md == 0.0:
        raise ValueError("the denominator is zero for every unit")
    r = float(y.mean()) / md
    cov = np.cov(y, d, ddof=1)
    var = (cov[0, 0] - 2.0 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * md * md)
    return Estimate(r, float(max(var, 0.0)), n)


def _welch_df(t: Estimate, c: Estimate) -> float:
    if math.isinf(t.df) or math.isinf(c.df):
        return math.inf
    num = (t.var + c.var) ** 2
    den = (t.var**2 / t.df if t.df > 0 else 0.0) + (c.var**2 / c.df if c.df > 0 else 0.0)
    return num / den if den > 0 else math.inf


def critical(alpha: float, df: float = math.inf) -> float:
    """The two-sided critical value: normal when ``df`` is infinite, Student t otherwise."""
    if math.isinf(df):
        return float(stats.norm.ppf(1.0 - alpha / 2.0))
    return float(stats.t.ppf(1.0 - alpha / 2.0, df))


def effect(treatment: Estimate, control: Estimate, alpha: float = 0.05) -> Effect:
    """The difference ``treatment − control`` with a ``1 − alpha`` interval and p-value.

    Welch's t interval when both estimates are sample means, the normal one otherwise. The
    relative change divides by the control value; its variance is the delta method's
    ``Var(t)/c² + t² Var(c)/c⁴`` (independent groups).
    """
    diff = treatment.value - control.value
    se = math.sqrt(max(treatment.var + control.var, 0.0))
    df = _welch_df(treatment, control)
    q = critical(alpha, df)
    if se > 0:
        z = abs(diff) / se
        p = float(2.0 * (stats.norm.sf(z) if math.isinf(df) else stats.t.sf(z, df)))
    else:
        p = 1.0 if diff == 0 else 0.0
    rel = rel_lo = rel_hi = None
    c = control.value
    if c != 0.0:
        rel = diff / c
        rel_se = math.sqrt(max(treatment.var / c**2 + treatment.value**2 * control.var / c**4, 0))
        zq = critical(alpha)
        rel_lo, rel_hi = rel - zq * rel_se, rel + zq * rel_se
    return Effect(
        control=c,
        treatment=treatment.value,
        absolute=diff,
        se=se,
        ci_low=diff - q * se,
        ci_high=diff + q * se,
        p_value=min(p, 1.0),
        relative=rel,
        rel_ci_low=rel_lo,
        rel_ci_high=rel_hi,
    )
