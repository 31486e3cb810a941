"""How many shoppers and days an experiment needs, from the store's own history.

The history is cut into two equal windows: shoppers active in the later one are the units,
their behaviour in the earlier one is the CUPED covariate. Their metric gives the per-shopper
standard deviation and the correlation ``ρ`` with the covariate, hence the sample size with
and without CUPED (:func:`experiments.power.units_per_variant`), and the pace at which new
shoppers arrived gives the days needed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from experiments.metrics import METRIC_NAMES, metric_spec, with_derived
from experiments.power import units_per_variant
from fairshelf.errors import InvalidArgument


@dataclass(frozen=True)
class Plan:
    """The answer of ``fairshelf experiments plan``."""

    metric: str
    baseline: float
    mde_absolute: float
    mde_relative: float
    unit_sd: float
    rho: float
    alpha: float
    power: float
    shoppers_per_variant: int
    shoppers_per_variant_cuped: int
    days: int | None
    days_cuped: int | None
    history_shoppers: int
    history_days: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _days_for(total: int, cumulative: npt.NDArray[np.float64]) -> int | None:
    """Days until ``total`` distinct shoppers arrive, at the pace seen in the history."""
    if cumulative.size == 0 or cumulative[-1] <= 0:
        return None
    reached = np.nonzero(cumulative >= total)[0]
    if reached.size:
        return int(reached[0]) + 1
    return math.ceil(total / (cumulative[-1] / cumulative.size))


def plan(
    units: pd.DataFrame,
    cumulative_shoppers: npt.ArrayLike,
    *,
    metric: str,
    mde: float,
    relative: bool = True,
    alpha: float = 0.05,
    power: float = 0.8,
) -> Plan:
    """Shoppers per variant and days for two equal variants to detect ``mde`` on ``metric``.

    Parameters
    ----------
    units:
        One row per shopper of the later history window: ``orders``, ``revenue``,
        ``pre_orders``, ``pre_revenue`` (and the recommended-item columns for those metrics).
    cumulative_shoppers:
        Distinct shoppers seen by the end of each day of the later window.
    metric:
        A metric name of :data:`experiments.metrics.METRIC_NAMES`.
    mde:
        Smallest effect worth detecting: relative to the baseline (0.05 = 5 %) when
        ``relative``, else in the metric's units.

    Raises
    ------
    InvalidArgument
        Unknown metric, an ``mde``/``alpha``/``power`` out of range, or a history without
        the data the metric needs.
    """
    if metric not in METRIC_NAMES:
        raise InvalidArgument(
            f"unknown metric {metric!r}; one of {', '.join(METRIC_NAMES)}", field="metric"
        )
    if not mde > 0:
        raise InvalidArgument(f"mde must be > 0, got {mde}", field="mde")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise InvalidArgument("alpha and power must be in (0, 1)", field="alpha")
    if len(units) < 2:
        raise InvalidArgument(
            f"the history holds {len(units)} active shopper(s); at least 2 are needed",
            field="db",
        )
    spec = metric_spec(metric)
    u = with_derived(units)
    y = u[spec.column].to_numpy(dtype=np.float64)
    rho = 0.0
    if spec.kind == "ratio":
        assert spec.denominator is not None
        d = u[spec.denominator].to_numpy(dtype=np.float64)
        if d.sum() == 0:
            raise InvalidArgument(f"the history has no data for {metric}", field="metric")
        baseline = float(y.sum() / d.sum())
        # Per-unit linearisation of the ratio (delta method).
        sd = float(np.std((y - baseline * d) / d.mean(), ddof=1))
    else:
        baseline = float(y.mean())
        sd = float(np.std(y, ddof=1))
        if spec.covariate is not None:
            x = u[spec.covariate].to_numpy(dtype=np.float64)
            if np.std(x) > 0 and sd > 0:
                rho = float(np.corrcoef(x, y)[0, 1])
    if sd == 0 or (baseline == 0 and relative):
        raise InvalidArgument(f"the history has no variation in {metric}", field="metric")
    absolute = mde * abs(baseline) if relative else mde
    n = units_per_variant(sd, absolute, alpha=alpha, power=power)
    n_cuped = units_per_variant(sd, absolute, alpha=alpha, power=power, rho=rho)
    cum = np.asarray(cumulative_shoppers, dtype=np.float64)
    return Plan(
        metric=metric,
        baseline=baseline,
        mde_absolute=absolute,
        mde_relative=absolute / abs(baseline) if baseline else math.inf,
        unit_sd=sd,
        rho=rho,
        alpha=alpha,
        power=power,
        shoppers_per_variant=n,
        shoppers_per_variant_cuped=n_cuped,
        days=_days_for(2 * n, cum),
        days_cuped=_days_for(2 * n_cuped, cum),
        history_shoppers=len(units),
        history_days=int(cum.size),
    )
