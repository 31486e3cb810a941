"""experiments.validation: the statistics' error rates on seeded simulated experiments."""

from __future__ import annotations

from experiments.validation import a_a, coverage, cuped_width_ratios, srm_trips


def test_intervals_cover_the_planted_effect() -> None:
    rates = coverage(range(100), 10_000)
    assert min(rates.counts.values()) >= 93, rates


def test_a_a_runs_are_rarely_significant_fixed_and_sequential_daily() -> None:
    rates = a_a(range(10_000, 10_200), 4_000)
    assert rates.counts["fixed"] <= 12 and rates.counts["sequential"] <= 12, rates


def test_cuped_narrows_the_revenue_interval_by_a_fifth() -> None:
    assert max(cuped_width_ratios(range(500, 510), 10_000)) <= 0.8


def test_srm_trips_on_52_48_at_20000_and_rarely_on_50_50() -> None:
    assert srm_trips(range(50), 20_000, 0.52).counts["trips"] == 50
    assert srm_trips(range(50), 20_000, 0.50).counts["trips"] == 0
