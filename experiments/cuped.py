"""CUPED: a pre-exposure covariate removes the variance it explains (Deng et al., 2013).

Each unit's metric ``y`` is replaced by ``y − θ (x − x̄)``, where ``x`` is the same unit's
behaviour before its first exposure and ``x̄`` the mean over all units. ``θ`` is the pooled
within-variant regression slope, so the adjusted difference of means equals the treatment
coefficient of the least-squares fit ``y ~ 1 + variant + x`` exactly. Randomisation makes the
covariate independent of the variant, so the adjustment shifts no expectation; it only narrows
the interval, by the factor ``sqrt(1 − ρ²)`` for a correlation ``ρ`` between ``x`` and ``y``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from experiments.estimates import Estimate, mean_estimate


@dataclass(frozen=True)
class CupedResult:
    """Adjusted estimates (in the order of the groups given) and the slope used."""

    estimates: tuple[Estimate, ...]
    theta: float


def pooled_theta(ys: Sequence[npt.ArrayLike], xs: Sequence[npt.ArrayLike]) -> float:
    """The within-group slope of ``y`` on ``x``, pooled over groups (0 if ``x`` is constant).

    Parameters
    ----------
    ys, xs:
        Per group, the metric and the covariate of each unit (aligned arrays).
    """
    sxy = sxx = 0.0
    for y, x in zip(ys, xs, strict=True):
        ya = np.asarray(y, dtype=np.float64)
        xa = np.asarray(x, dtype=np.float64)
        xc = xa - xa.mean()
        sxy += float(np.dot(xc, ya - ya.mean()))
        sxx += float(np.dot(xc, xc))
    return sxy / sxx if sxx > 0 else 0.0


def cuped(ys: Sequence[npt.ArrayLike], xs: Sequence[npt.ArrayLike]) -> CupedResult:
    """CUPED-adjusted mean estimates for several groups sharing one slope.

    Parameters
    ----------
    ys, xs:
        Per group (control first, by convention), the metric and the pre-exposure covariate of
        each unit; every group needs at least two units.

    Returns
    -------
    CupedResult
        Estimates whose differences are the regression-adjusted effects, and ``θ``.
    """
    theta = pooled_theta(ys, xs)
    x_all = np.concatenate([np.asarray(x, dtype=np.float64) for x in xs])
    x_bar = float(x_all.mean()) if x_all.size else 0.0
    out = []
    for y, x in zip(ys, xs, strict=True):
        adjusted = np.asarray(y, dtype=np.float64) - theta * (
            np.asarray(x, dtype=np.float64) - x_bar
        )
        out.append(mean_estimate(adjusted))
    return CupedResult(tuple(out), theta)
