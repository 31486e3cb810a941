"""Sample size for a two-variant test of a mean, with or without CUPED."""

from __future__ import annotations

import math

from scipy import stats


def units_per_variant(
    unit_sd: float, mde: float, *, alpha: float = 0.05, power: float = 0.8, rho: float = 0.0
) -> int:
    """Units each of two equal variants needs to detect an absolute effect ``mde``.

    ``n = 2 (z_{1−α/2} + z_{power})² σ² (1 − ρ²) / mde²``: a two-sided level-``alpha`` test
    with the given power, where ``σ`` is the per-unit standard deviation and ``ρ`` the
    correlation with the CUPED covariate (0: no adjustment).

    Raises
    ------
    ValueError
        If ``mde`` is not positive, or ``alpha``/``power``/``rho`` are out of range.
    """
    if not mde > 0:
        raise ValueError(f"mde must be > 0, got {mde}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")
    if not -1 <= rho <= 1:
        raise ValueError(f"rho must be in [-1, 1], got {rho}")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return max(2, math.ceil(2 * z * z * unit_sd * unit_sd * (1 - rho * rho) / (mde * mde)))
