"""The statistics of experiments.* on seeded simulated experiments with planted effects."""

from __future__ import annotations

import numpy as np

from experiments.cuped import cuped
from experiments.estimates import Effect, effect, mean_estimate, ratio_estimate
from experiments.sequential import always_valid
from experiments.simulation import PlantedVariant, SimulatedExperiment, simulate, split_by_variant

PLANTED = [PlantedVariant("control"), PlantedVariant("better", rate_lift=1.05, aov_lift=1.03)]
AA = [PlantedVariant("a"), PlantedVariant("b")]


def _effects(sim: SimulatedExperiment, t: float) -> dict[str, Effect]:
    c, b = split_by_variant(sim.units_at(t), 2)
    return {
        "conversion": effect(mean_estimate(b["converted"]), mean_estimate(c["converted"])),
        "revenue_per_shopper": effect(mean_estimate(b["revenue"]), mean_estimate(c["revenue"])),
        "aov": effect(
            ratio_estimate(b["revenue"], b["orders"]), ratio_estimate(c["revenue"], c["orders"])
        ),
    }


def _cuped_revenue(sim: SimulatedExperiment, t: float) -> tuple[Effect, int]:
    c, b = split_by_variant(sim.units_at(t), 2)
    res = cuped([c["revenue"], b["revenue"]], [c["pre_revenue"], b["pre_revenue"]])
    return effect(res.estimates[1], res.estimates[0]), len(c["revenue"]) + len(b["revenue"])


def test_intervals_cover_the_planted_effect() -> None:
    covered = dict.fromkeys(("conversion", "revenue_per_shopper", "aov"), 0)
    for seed in range(100):
        sim = simulate(np.random.default_rng(seed), 10_000, PLANTED)
        truth_c, truth_b = sim.truth("control"), sim.truth("better")
        for name, eff in _effects(sim, sim.model.days).items():
            true = truth_b[name] - truth_c[name]
            covered[name] += eff.ci_low <= true <= eff.ci_high
    assert min(covered.values()) >= 93, covered


def test_a_a_runs_are_rarely_significant_fixed_and_sequential_daily() -> None:
    fixed = sequential = 0
    for seed in range(200):
        sim = simulate(np.random.default_rng(10_000 + seed), 4_000, AA)
        looks = [_cuped_revenue(sim, day) for day in range(1, sim.model.days + 1)]
        fixed += looks[-1][0].p_value < 0.05
        p, _, _ = always_valid(
            [e.absolute for e, _ in looks], [e.se**2 for e, _ in looks], [n for _, n in looks]
        )
        sequential += p[-1] < 0.05
    assert fixed <= 12 and sequential <= 12, (fixed, sequential)


def test_cuped_narrows_the_revenue_interval_by_a_fifth() -> None:
    ratios = []
    for seed in range(10):
        sim = simulate(np.random.default_rng(500 + seed), 10_000, PLANTED)
        plain = _effects(sim, sim.model.days)["revenue_per_shopper"]
        adjusted, _ = _cuped_revenue(sim, sim.model.days)
        ratios.append((adjusted.ci_high - adjusted.ci_low) / (plain.ci_high - plain.ci_low))
    assert max(ratios) <= 0.8, ratios
