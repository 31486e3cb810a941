"""Sample-ratio mismatch: do the variants hold the shares of units the split promised?

A chi-square goodness-of-fit test of the exposed units per variant against the configured
shares. A mismatch means the assignment or the logging is broken (a variant that errors more
often logs fewer exposures), and every effect of the experiment is then suspect. The default
threshold is p < 0.001, as in GrowthBook and Statsig, so that a healthy experiment checked
every day rarely raises a false alarm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

SRM_ALPHA = 0.001


@dataclass(frozen=True)
class SrmResult:
    """The chi-square statistic, its p-value and whether it trips at ``alpha``."""

    chi2: float
    p_value: float
    mismatch: bool
    observed: dict[str, int]
    expected_share: dict[str, float]


def srm_test(
    counts: Mapping[str, int], shares: Mapping[str, float], alpha: float = SRM_ALPHA
) -> SrmResult:
    """Chi-square test of ``counts`` against ``shares``.

    Parameters
    ----------
    counts:
        Variant -> exposed units.
    shares:
        Variant -> configured share; renormalised over the variants in ``counts`` (a variant
        with share 0 must have no units, else the mismatch is certain).
    alpha:
        Significance threshold of the alarm.

    Raises
    ------
    ValueError
        If a variant of ``counts`` has no share, or no units were counted at all.
    """
    names = sorted(counts)
    unknown = [n for n in names if n not in shares]
    if unknown:
        raise ValueError(f"variant(s) {unknown} are not in the configured split")
    obs = np.array([counts[n] for n in names], dtype=np.float64)
    total = obs.sum()
    if total <= 0:
        raise ValueError("no exposed units to test")
    w = np.array([shares[n] for n in names], dtype=np.float64)
    if w.sum() <= 0:
        raise ValueError("the configured shares of these variants sum to zero")
    w = w / w.sum()
    if len(names) < 2:
        return SrmResult(0.0, 1.0, False, dict(zip(names, map(int, obs), strict=True)), {})
    zero = w == 0
    if np.any(zero & (obs > 0)):
        chi2, p = float("inf"), 0.0
    else:
        res = stats.chisquare(obs[~zero], total * w[~zero])
        chi2, p = float(res.statistic), float(res.pvalue)
    return SrmResult(
        chi2=chi2,
        p_value=p,
        mismatch=p < alpha,
        observed={n: int(c) for n, c in zip(names, obs, strict=True)},
        expected_share={n: float(s) for n, s in zip(names, w, strict=True)},
    )
