"""Seeded experiments at the array level, with effects whose true size is known in closed form.

Used to prove the statistics: each shopper has a daily order rate drawn from a gamma
distribution (some shop often, most rarely), orders before the experiment (the CUPED
covariate) and after their exposure, whose time is uniform over the experiment. A variant
multiplies the order rate and the mean order value by planted lifts, so conversion, revenue
per shopper and average order value of every variant have exact expected values
(:meth:`SimulatedExperiment.truth`) against which the intervals are checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class PlantedVariant:
    """A variant and its planted effect: ``rate_lift`` multiplies the order rate after
    exposure, ``aov_lift`` the mean order value."""

    name: str
    share: float = 0.5
    rate_lift: float = 1.0
    aov_lift: float = 1.0


@dataclass(frozen=True)
class ShopperModel:
    """Population parameters of the simulated store."""

    rate_mean: float = 0.1  # orders per shopper per day
    rate_shape: float = 0.3  # gamma shape: smaller = more unequal shoppers
    order_value_mean: float = 40.0
    order_value_shape: float = 4.0
    pre_days: float = 56.0  # history before the experiment, for CUPED
    days: int = 14


@dataclass(frozen=True)
class SimulatedExperiment:
    """Per-shopper and per-order arrays of one simulated experiment."""

    variants: tuple[PlantedVariant, ...]
    model: ShopperModel
    variant: npt.NDArray[np.int64]  # index into ``variants``, per shopper
    entry: npt.NDArray[np.float64]  # exposure time in days from the start
    pre_orders: npt.NDArray[np.float64]
    pre_revenue: npt.NDArray[np.float64]
    order_shopper: npt.NDArray[np.int64]
    order_time: npt.NDArray[np.float64]
    order_value: npt.NDArray[np.float64]

    def units_at(self, t: float) -> dict[str, np.ndarray]:
        """Per shopper exposed by day ``t``: variant, orders, revenue, covariates so far."""
        seen = self.entry <= t
        done = self.order_time <= t
        n = self.entry.shape[0]
        orders = np.bincount(self.order_shopper[done], minlength=n).astype(np.float64)
        revenue = np.bincount(self.order_shopper[done], weights=self.order_value[done], minlength=n)
        return {
            "variant": self.variant[seen],
            "orders": orders[seen],
            "revenue": revenue[seen],
            "converted": (orders[seen] > 0).astype(np.float64),
            "pre_orders": self.pre_orders[seen],
            "pre_revenue": self.pre_revenue[seen],
        }

    def truth(self, name: str) -> dict[str, float]:
        """Expected conversion, revenue per shopper and AOV of a variant at the end."""
        v = next(x for x in self.variants if x.name == name)
        m = self.model
        k = m.rate_shape
        a = m.rate_mean / k * v.rate_lift  # gamma scale times the lift
        d = float(m.days)
        # E over the exposure window w ~ U(0, D) of P(Poisson(λ w) > 0), λ ~ Gamma(k, scale).
        if abs(k - 1.0) < 1e-12:
            no_order = np.log1p(a * d) / (a * d)
        else:
            no_order = ((1 + a * d) ** (1 - k) - 1) / (a * d * (1 - k))
        aov = m.order_value_mean * v.aov_lift
        return {
            "conversion": float(1.0 - no_order),
            "revenue_per_shopper": m.rate_mean * v.rate_lift * d / 2.0 * aov,
            "aov": aov,
        }


def simulate(
    rng: np.random.Generator,
    shoppers: int,
    variants: Sequence[PlantedVariant],
    model: ShopperModel | None = None,
) -> SimulatedExperiment:
    """Simulate one experiment of ``shoppers`` shoppers split over ``variants``."""
    m = model or ShopperModel()
    vs = tuple(variants)
    shares = np.array([v.share for v in vs], dtype=np.float64)
    variant = rng.choice(len(vs), size=shoppers, p=shares / shares.sum()).astype(np.int64)
    rate = rng.gamma(m.rate_shape, m.rate_mean / m.rate_shape, shoppers)
    entry = rng.random(shoppers) * m.days
    scale = m.order_value_mean / m.order_value_shape

    pre_orders = rng.poisson(rate * m.pre_days)
    # A sum of j gamma(shape, scale) order values is gamma(j * shape, scale).
    pre_revenue = np.where(
        pre_orders > 0, rng.gamma(np.maximum(pre_orders, 1) * m.order_value_shape, scale), 0.0
    )
    rate_lift = np.array([v.rate_lift for v in vs])[variant]
    aov_lift = np.array([v.aov_lift for v in vs])[variant]
    n_post = rng.poisson(rate * rate_lift * (m.days - entry))
    who = np.repeat(np.arange(shoppers, dtype=np.int64), n_post)
    when = entry[who] + rng.random(who.shape[0]) * (m.days - entry[who])
    value = rng.gamma(m.order_value_shape, scale * aov_lift[who])
    return SimulatedExperiment(
        variants=vs,
        model=m,
        variant=variant,
        entry=entry,
        pre_orders=pre_orders.astype(np.float64),
        pre_revenue=pre_revenue,
        order_shopper=who,
        order_time=when,
        order_value=value,
    )


def split_by_variant(
    units: Mapping[str, np.ndarray], n_variants: int
) -> list[dict[str, np.ndarray]]:
    """The columns of ``units`` for each variant index in turn."""
    return [{k: a[units["variant"] == i] for k, a in units.items()} for i in range(n_variants)]
