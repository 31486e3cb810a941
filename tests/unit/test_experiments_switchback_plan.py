"""experiments.switchback_readout (against pricing.switchback) and experiments.planning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.planning import plan
from experiments.power import units_per_variant
from experiments.switchback_readout import switchback_readout
from fairshelf.errors import InvalidArgument
from pricing.switchback import analyze_switchback


def _epochs(seed: int, slots: int = 40, lift: float = 50.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(slots):
        policy = ["static", "optimal"][(s + (s // 2) % 2) % 2]
        for e in range(4):
            rev = rng.normal(1000 + (lift if policy == "optimal" else 0.0), 60)
            rows.append({"epoch": 4 * s + e, "policy": policy, "revenue": rev, "margin": rev * 0.3})
    return pd.DataFrame(rows)


def test_switchback_readout_agrees_with_the_pricing_analysis() -> None:
    epochs = _epochs(1)
    r = switchback_readout(epochs, name="sb", epochs_per_slot=4, washout_epochs=1, control="static")
    ref = analyze_switchback(epochs, epochs_per_slot=4, washout_epochs=1, control="static")
    ref_row = ref[ref["policy"] == "optimal"].iloc[0]
    got = next(m for m in r.metrics if m.metric == "revenue" and m.variant == "optimal")
    assert got.effect is not None
    assert got.effect.absolute == pytest.approx(ref_row["revenue_diff"], rel=1e-12)
    assert got.effect.ci_low == pytest.approx(ref_row["revenue_diff_ci_low"], rel=1e-9)
    assert got.effect.ci_high == pytest.approx(ref_row["revenue_diff_ci_high"], rel=1e-9)
    assert r.unit == "slot" and {v.units for v in r.variants} == {20}
    assert got.seq_ci_low is not None and got.seq_ci_low <= got.effect.ci_low
    with pytest.raises(InvalidArgument, match="washout"):
        switchback_readout(epochs, name="sb", epochs_per_slot=4, washout_epochs=4)


def _history(seed: int, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.4, 0.5, n)
    pre = rng.poisson(rate * 2)
    orders = rng.poisson(rate * 2)
    return pd.DataFrame(
        {
            "orders": orders.astype(float),
            "revenue": orders * rng.gamma(4, 10, n),
            "pre_orders": pre.astype(float),
            "pre_revenue": pre * rng.gamma(4, 10, n),
            "rec_clicks": rng.poisson(1, n).astype(float),
            "rec_shown": np.full(n, 20.0),
            "rec_revenue": np.zeros(n),
        }
    )


def test_plan_uses_the_history_variance_and_the_cuped_correlation() -> None:
    units = _history(2)
    cum = np.linspace(300, 3000, 14)
    p = plan(units, cum, metric="revenue_per_shopper", mde=0.05)
    sd = float(units["revenue"].std(ddof=1))
    assert p.unit_sd == pytest.approx(sd)
    assert p.shoppers_per_variant == units_per_variant(sd, 0.05 * units["revenue"].mean())
    assert 0.2 < p.rho < 1 and p.shoppers_per_variant_cuped < p.shoppers_per_variant
    assert p.days is not None and p.days_cuped is not None and p.days_cuped <= p.days
    aov = plan(units, cum, metric="aov", mde=0.05)
    assert aov.rho == 0.0 and aov.shoppers_per_variant > 0


def test_plan_refuses_unknown_metrics_and_empty_histories() -> None:
    with pytest.raises(InvalidArgument, match="unknown metric 'gmv'"):
        plan(_history(3), [1.0], metric="gmv", mde=0.1)
    with pytest.raises(InvalidArgument, match="at least 2"):
        plan(_history(3).iloc[:1], [1.0], metric="conversion", mde=0.1)
    with pytest.raises(InvalidArgument, match="mde"):
        plan(_history(3), [1.0], metric="conversion", mde=0.0)
