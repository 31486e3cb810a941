"""experiments.estimates/cuped/sequential/srm/multiple/power against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

from experiments.cuped import cuped
from experiments.estimates import effect, mean_estimate, ratio_estimate
from experiments.multiple import holm
from experiments.power import units_per_variant
from experiments.sequential import always_valid, msprt
from experiments.srm import srm_test


def _pre_post(rng: np.random.Generator, n: int, lift: float) -> tuple[np.ndarray, ...]:
    x = rng.gamma(0.5, 20.0, n)
    y = 0.6 * x + rng.gamma(1.0, 5.0, n) + lift
    return x, y


def test_cuped_effect_equals_the_ols_treatment_coefficient() -> None:
    rng = np.random.default_rng(3)
    xc, yc = _pre_post(rng, 3000, 0.0)
    xt, yt = _pre_post(rng, 2500, 1.5)
    res = cuped([yc, yt], [xc, xt])
    eff = effect(res.estimates[1], res.estimates[0])
    treat = np.r_[np.zeros(len(yc)), np.ones(len(yt))]
    design = sm.add_constant(np.column_stack([treat, np.r_[xc, xt]]))
    fit = sm.OLS(np.r_[yc, yt], design).fit(cov_type="HC2")
    assert eff.absolute == pytest.approx(fit.params[1], abs=1e-6)
    assert res.theta == pytest.approx(fit.params[2], abs=1e-6)
    # Robust OLS and per-group adjusted variances differ only in the slope's own noise.
    assert eff.se == pytest.approx(fit.bse[1], rel=0.02)
    plain = effect(mean_estimate(yt), mean_estimate(yc))
    assert eff.se < 0.8 * plain.se


def test_cuped_without_history_is_the_plain_difference() -> None:
    rng = np.random.default_rng(4)
    yc, yt = rng.normal(0, 1, 500), rng.normal(0.2, 1, 400)
    res = cuped([yc, yt], [np.zeros(500), np.zeros(400)])
    assert res.theta == 0.0
    plain = effect(mean_estimate(yt), mean_estimate(yc))
    assert effect(res.estimates[1], res.estimates[0]).se == pytest.approx(plain.se, rel=1e-12)


def test_welch_interval_matches_statsmodels() -> None:
    rng = np.random.default_rng(5)
    c, t = rng.exponential(3.0, 300), rng.exponential(3.6, 200)
    eff = effect(mean_estimate(t), mean_estimate(c), alpha=0.05)
    cm = sm.stats.CompareMeans(sm.stats.DescrStatsW(t), sm.stats.DescrStatsW(c))
    lo, hi = cm.tconfint_diff(alpha=0.05, usevar="unequal")
    _, p, _ = cm.ttest_ind(usevar="unequal")
    assert (eff.ci_low, eff.ci_high) == pytest.approx((lo, hi), abs=1e-9)
    assert eff.p_value == pytest.approx(p, abs=1e-9)


def test_delta_method_ratio_matches_the_bootstrap() -> None:
    rng = np.random.default_rng(6)
    orders = rng.poisson(rng.gamma(0.4, 2.0, 4000)).astype(float)
    revenue = np.array([rng.gamma(3.0, 15.0, int(k)).sum() for k in orders])
    est = ratio_estimate(revenue, orders)
    assert est.value == pytest.approx(revenue.sum() / orders.sum(), rel=1e-12)
    boots = 2000
    idx = rng.integers(0, len(orders), (boots, len(orders)))
    ratios = revenue[idx].sum(axis=1) / orders[idx].sum(axis=1)
    boot_se = float(ratios.std(ddof=1))
    # The bootstrap's own relative error is about 1 / sqrt(2 B) = 1.6 %; allow 5 of them.
    assert est.se == pytest.approx(boot_se, rel=0.08)


def test_srm_trips_on_52_48_and_not_on_a_fair_split() -> None:
    shares = {"a": 0.5, "b": 0.5}
    assert srm_test({"a": 10_400, "b": 9_600}, shares).mismatch
    rng = np.random.default_rng(7)
    fair = [
        srm_test({"a": int(k), "b": 20_000 - int(k)}, shares) for k in rng.binomial(20_000, 0.5, 50)
    ]
    assert not any(r.mismatch for r in fair)
    res = srm_test({"a": 10_400, "b": 9_600}, shares)
    assert res.p_value == pytest.approx(stats.chisquare([10_400, 9_600]).pvalue)


def test_srm_rejects_a_variant_outside_the_split() -> None:
    with pytest.raises(ValueError, match="not in the configured split"):
        srm_test({"a": 10, "z": 3}, {"a": 1.0})


def test_holm_matches_statsmodels() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001])
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], abs=1e-12)


def test_units_per_variant_matches_statsmodels_power() -> None:
    n = units_per_variant(2.0, 0.1, alpha=0.05, power=0.8)
    ref = NormalIndPower().solve_power(effect_size=0.1 / 2.0, alpha=0.05, power=0.8, ratio=1.0)
    assert n == int(np.ceil(ref))
    assert abs(units_per_variant(2.0, 0.1, rho=0.6) - ref * (1 - 0.6**2)) <= 1
    with pytest.raises(ValueError, match="mde"):
        units_per_variant(1.0, 0.0)


def test_msprt_interval_is_wider_than_fixed_and_tightens_with_data() -> None:
    wide = msprt(0.1, 0.01, 0.001)
    assert wide.ci_low < 0.1 - 1.96 * 0.1 and wide.ci_high > 0.1 + 1.96 * 0.1
    p, lo, hi = always_valid([0.3, 0.25, 0.2], [0.04, 0.02, 0.01], [1000, 2000, 4000])
    assert np.all(np.diff(p) <= 0) and np.all(np.diff(hi - lo) < 0)
