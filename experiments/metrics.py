"""The metrics of a recommendation experiment, as columns of the per-shopper table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd

# The recommender's strategy name when it falls back to the trending list (recsys.types).
FALLBACK_STRATEGIES: Final[frozenset[str]] = frozenset({"trending"})


@dataclass(frozen=True)
class MetricSpec:
    """One metric: a per-shopper mean (``column``) or a ratio of per-shopper sums
    (``column`` / ``denominator``, delta method), with an optional CUPED covariate."""

    name: str
    label: str
    kind: Literal["mean", "ratio"]
    column: str
    denominator: str | None = None
    covariate: str | None = None


METRICS: Final[tuple[MetricSpec, ...]] = (
    MetricSpec("conversion", "conversion rate", "mean", "converted", covariate="pre_converted"),
    MetricSpec(
        "revenue_per_shopper", "revenue per exposed shopper", "mean", "revenue",
        covariate="pre_revenue",
    ),
    MetricSpec("aov", "average order value", "ratio", "revenue", denominator="orders"),
    MetricSpec(
        "rec_ctr", "CTR on recommended items", "ratio", "rec_clicks", denominator="rec_shown"
    ),
    MetricSpec("repeat_rate", "repeat-purchase rate", "mean", "repeat", covariate="pre_orders"),
    MetricSpec(
        "rec_revenue_per_shopper", "revenue from recommended items per shopper", "mean",
        "rec_revenue", covariate="pre_revenue",
    ),
)  # fmt: skip

METRIC_NAMES: Final[tuple[str, ...]] = tuple(m.name for m in METRICS)


def metric_spec(name: str) -> MetricSpec:
    """The metric called ``name``.

    Raises
    ------
    KeyError
        If no metric has that name.
    """
    for m in METRICS:
        if m.name == name:
            return m
    raise KeyError(name)


def with_derived(units: pd.DataFrame) -> pd.DataFrame:
    """Add the 0/1 columns the metrics read (converted, repeat buyer, converted before)."""
    out = units.copy()
    out["converted"] = (out["orders"] > 0).astype(np.float64)
    out["repeat"] = (out["orders"] >= 2).astype(np.float64)
    out["pre_converted"] = (out["pre_orders"] > 0).astype(np.float64)
    return out
