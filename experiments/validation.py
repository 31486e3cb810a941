"""Repeated seeded experiments that measure the statistics' own error rates.

Coverage of the planted effect, false positives of A/A runs (fixed horizon and sequential
with a look every simulated day), and the narrowing CUPED brings. The tests assert the
targets on these figures; ``benchmarks/experiments_bench.py`` prints them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from experiments.cuped import cuped
from experiments.estimates import Effect, effect, mean_estimate, ratio_estimate
from experiments.sequential import always_valid
from experiments.simulation import (
    PlantedVariant,
    ShopperModel,
    SimulatedExperiment,
    simulate,
    split_by_variant,
)
from experiments.srm import srm_test

PLANTED: tuple[PlantedVariant, ...] = (
    PlantedVariant("control"),
    PlantedVariant("better", rate_lift=1.05, aov_lift=1.03),
)
AA: tuple[PlantedVariant, ...] = (PlantedVariant("a"), PlantedVariant("b"))
COVERED_METRICS: tuple[str, ...] = ("conversion", "revenue_per_shopper", "aov")


def fixed_effects(sim: SimulatedExperiment, t: float) -> dict[str, Effect]:
    """Second variant against the first at day ``t``: conversion, revenue/shopper, AOV."""
    c, b = split_by_variant(sim.units_at(t), 2)
    return {
        "conversion": effect(mean_estimate(b["converted"]), mean_estimate(c["converted"])),
        "revenue_per_shopper": effect(mean_estimate(b["revenue"]), mean_estimate(c["revenue"])),
        "aov": effect(
            ratio_estimate(b["revenue"], b["orders"]), ratio_estimate(c["revenue"], c["orders"])
        ),
    }


def cuped_revenue(sim: SimulatedExperiment, t: float) -> tuple[Effect, int]:
    """The CUPED revenue-per-shopper effect at day ``t`` and the shoppers behind it."""
    c, b = split_by_variant(sim.units_at(t), 2)
    res = cuped([c["revenue"], b["revenue"]], [c["pre_revenue"], b["pre_revenue"]])
    return effect(res.estimates[1], res.estimates[0]), len(c["revenue"]) + len(b["revenue"])


@dataclass(frozen=True)
class Rates:
    """Counts out of ``runs``."""

    runs: int
    counts: dict[str, int]


def coverage(
    seeds: Iterable[int], shoppers: int, variants: Sequence[PlantedVariant] = PLANTED
) -> Rates:
    """How often the 95 % interval of each metric contains the planted effect."""
    covered = dict.fromkeys(COVERED_METRICS, 0)
    runs = 0
    for seed in seeds:
        sim = simulate(np.random.default_rng(seed), shoppers, variants)
        t0, t1 = sim.truth(variants[0].name), sim.truth(variants[1].name)
        for name, eff in fixed_effects(sim, sim.model.days).items():
            covered[name] += int(eff.ci_low <= t1[name] - t0[name] <= eff.ci_high)
        runs += 1
    return Rates(runs, covered)


def a_a(seeds: Iterable[int], shoppers: int, model: ShopperModel | None = None) -> Rates:
    """A/A runs called significant on CUPED revenue: at the end (fixed) and at any daily look
    (always-valid p-value)."""
    fixed = sequential = runs = 0
    for seed in seeds:
        sim = simulate(np.random.default_rng(seed), shoppers, AA, model)
        looks = [cuped_revenue(sim, day) for day in range(1, sim.model.days + 1)]
        fixed += int(looks[-1][0].p_value < 0.05)
        p, _, _ = always_valid(
            [e.absolute for e, _ in looks], [e.se**2 for e, _ in looks], [n for _, n in looks]
        )
        sequential += int(p[-1] < 0.05)
        runs += 1
    return Rates(runs, {"fixed": fixed, "sequential": sequential})


def cuped_width_ratios(seeds: Iterable[int], shoppers: int) -> list[float]:
    """CUPED interval width over the plain one, revenue per shopper, per seed."""
    out = []
    for seed in seeds:
        sim = simulate(np.random.default_rng(seed), shoppers, PLANTED)
        plain = fixed_effects(sim, sim.model.days)["revenue_per_shopper"]
        adjusted, _ = cuped_revenue(sim, sim.model.days)
        out.append((adjusted.ci_high - adjusted.ci_low) / (plain.ci_high - plain.ci_low))
    return out


def srm_trips(seeds: Iterable[int], shoppers: int, share: float) -> Rates:
    """How often the sample-ratio check trips when the true first share is ``share``."""
    trips = runs = 0
    for seed in seeds:
        k = int(np.random.default_rng(seed).binomial(shoppers, share))
        trips += int(srm_test({"a": k, "b": shoppers - k}, {"a": 0.5, "b": 0.5}).mismatch)
        runs += 1
    return Rates(runs, {"trips": trips})
