"""Always-valid p-values and intervals: the mixture sequential probability ratio test.

For an estimated difference ``d`` with variance ``V`` and a normal mixing distribution of
variance ``τ²`` over the true effect, the mixture likelihood ratio against ``θ`` is

    Λ(θ) = sqrt(V / (V + τ²)) · exp(τ² (d − θ)² / (2 V (V + τ²)))

(Johari, Pekelis & Walsh, "Always valid inference", 2017; Robbins, 1970). ``1 / Λ(0)`` is a
p-value and ``{θ : Λ(θ) < 1/α}`` a confidence interval that stay valid however often they
are looked at, provided each look keeps the smallest p-value seen so far (:func:`running`).
``τ²`` is the variance the difference would have with ``n_tune`` units per variant, from the
per-unit variance (as GrowthBook tunes its sequential test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DEFAULT_N_TUNE = 5000


@dataclass(frozen=True)
class SequentialResult:
    """The always-valid p-value and interval of one look."""

    p_value: float
    ci_low: float
    ci_high: float


def mixing_variance(unit_var_t: float, unit_var_c: float, n_tune: int = DEFAULT_N_TUNE) -> float:
    """``τ²``: the variance of the difference when each variant has ``n_tune`` units."""
    return max((unit_var_t + unit_var_c) / n_tune, 1e-300)


def msprt(diff: float, var: float, tau2: float, alpha: float = 0.05) -> SequentialResult:
    """The mSPRT p-value and interval of one look (not yet combined with earlier looks).

    Parameters
    ----------
    diff, var:
        Estimated difference and its variance.
    tau2:
        Mixing variance (:func:`mixing_variance`), fixed for the whole experiment.
    alpha:
        One minus the interval's level.
    """
    if var <= 0:
        return SequentialResult(1.0 if diff == 0 else 0.0, diff, diff)
    s = var + tau2
    log_lambda = 0.5 * math.log(var / s) + tau2 * diff * diff / (2.0 * var * s)
    p = math.exp(-log_lambda) if log_lambda > -700 else math.inf
    half = math.sqrt(var * s / tau2 * (2.0 * math.log(1.0 / alpha) + math.log(s / var)))
    return SequentialResult(min(1.0, p), diff - half, diff + half)


def running(
    p_values: npt.ArrayLike, lows: npt.ArrayLike, highs: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine looks in time order: the running minimum p-value, each look's own interval.

    The intervals are not intersected: every look's interval already covers a fixed effect
    at all looks at once with probability ``1 − alpha``, and per-shopper metrics that grow
    with time since exposure (revenue so far) have an effect that drifts as shoppers age,
    which an intersection would wrongly pin to its early value.
    """
    p = np.minimum.accumulate(np.asarray(p_values, dtype=np.float64))
    return p, np.asarray(lows, dtype=np.float64), np.asarray(highs, dtype=np.float64)


def always_valid(
    diffs: npt.ArrayLike,
    variances: npt.ArrayLike,
    units: npt.ArrayLike,
    alpha: float = 0.05,
    n_tune: int = DEFAULT_N_TUNE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Always-valid p-values and intervals of a series of looks at two equal variants.

    Parameters
    ----------
    diffs, variances:
        The estimated difference and its variance at each look, in time order.
    units:
        Units in both variants together at each look; ``variance · units / 2`` is the
        per-unit variance of the two variants summed, from which ``τ²`` is set.
    alpha, n_tune:
        As in :func:`msprt` and :func:`mixing_variance`.

    Returns
    -------
    tuple of numpy.ndarray
        Running p-value, interval low and high after each look.
    """
    d = np.asarray(diffs, dtype=np.float64)
    v = np.asarray(variances, dtype=np.float64)
    n = np.asarray(units, dtype=np.float64)
    looks = [
        msprt(
            float(d[i]),
            float(v[i]),
            mixing_variance(v[i] * n[i] / 4, v[i] * n[i] / 4, n_tune),
            alpha,
        )
        for i in range(d.shape[0])
    ]
    return running(
        [s.p_value for s in looks], [s.ci_low for s in looks], [s.ci_high for s in looks]
    )
