"""Tests of pricing.elasticity: recovery of known elasticities, shrinkage and validation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from fairshelf.errors import InvalidArgument
from pricing.demand_curve import expected_units
from pricing.elasticity import category_elasticities, fit_elasticities, observations_from_events


def _observations(
    seed: int, *, items: int = 40, periods: int = 120, base_units: float = 8.0
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Poisson sales on a constant-elasticity curve with a shared weekly traffic pattern."""
    rng = np.random.default_rng(seed)
    truth: dict[str, float] = {}
    rows = []
    weekly = np.exp(0.3 * np.sin(np.arange(periods) * 2 * np.pi / 7))
    for i in range(items):
        cat = "a" if i % 2 == 0 else "b"
        true = (-1.0 if cat == "a" else -2.5) + rng.normal(0, 0.2)
        item_id = f"I{i:03d}"
        truth[item_id] = true
        base = float(rng.uniform(5, 50))
        price = base * rng.choice([0.8, 0.9, 1.0, 1.1, 1.2], size=periods)
        mean = expected_units(price, base, base_units, true) * weekly
        units = rng.poisson(mean)
        for t in range(periods):
            rows.append((item_id, cat, t, float(price[t]), int(units[t])))
    obs = pd.DataFrame(rows, columns=["item_id", "category", "period", "price", "units"])
    return obs, truth


def _col(frame: pd.DataFrame, key: str, column: str) -> Any:
    """One cell of an item- or category-indexed table (typed loosely for the stubs)."""
    return frame[column].to_dict()[key]


def test_recovers_known_elasticities_with_calibrated_errors() -> None:
    obs, truth = _observations(1)
    fit = fit_elasticities(obs, min_obs=30)
    assert list(fit["item_id"]) == sorted(truth)
    err = fit["elasticity"].to_numpy() - np.array([truth[i] for i in fit["item_id"]])
    assert np.median(np.abs(err)) < 0.2
    assert (fit["source"] == "item").all()
    # Most true values fall inside the 95 % posterior interval.
    inside = np.abs(err) <= 1.96 * fit["stderr"].to_numpy()
    assert inside.mean() >= 0.85


def test_thin_items_get_their_category_prior() -> None:
    obs, _ = _observations(2)
    # Item I000 (category a) keeps only 3 periods: too few units for its own estimate.
    thin = obs[(obs["item_id"] != "I000") | (obs["period"] < 3)]
    fit = fit_elasticities(thin, min_obs=30).set_index("item_id")
    assert _col(fit, "I000", "source") == "category"
    assert _col(fit, "I000", "n_periods") == 3
    own_a = fit[(fit["category"] == "a") & (fit["source"] == "item")]
    assert abs(_col(fit, "I000", "elasticity") - own_a["elasticity"].mean()) < 0.15
    assert _col(fit, "I000", "stderr") > own_a["stderr"].median()
    # The category prior is that of category a (near -1), not of b (near -2.5).
    assert abs(_col(fit, "I000", "elasticity") + 1.0) < 0.3


def test_item_without_price_variation_uses_category() -> None:
    obs, _ = _observations(3, items=10)
    obs.loc[obs["item_id"] == "I001", "price"] = 10.0
    fit = fit_elasticities(obs).set_index("item_id")
    assert _col(fit, "I001", "source") == "category"
    assert np.isnan(_col(fit, "I001", "raw_elasticity"))


def test_category_table_has_intervals_around_truth() -> None:
    obs, _ = _observations(4)
    table = category_elasticities(fit_elasticities(obs)).set_index("category")
    assert _col(table, "a", "ci_low") < -1.0 < _col(table, "a", "ci_high") + 0.2
    assert _col(table, "b", "ci_low") - 0.2 < -2.5 < _col(table, "b", "ci_high")
    assert (table["ci_high"] > table["ci_low"]).all()


@pytest.mark.parametrize(
    ("column", "value"),
    [("price", 0.0), ("price", -1.0), ("units", -2.0)],
)
def test_invalid_values_are_refused_naming_the_column(column: str, value: float) -> None:
    obs, _ = _observations(5, items=2, periods=5)
    obs.loc[3, column] = value
    with pytest.raises(InvalidArgument) as err:
        fit_elasticities(obs)
    assert err.value.field == column
    assert "row 3" in str(err.value)


def test_missing_column_is_named() -> None:
    obs, _ = _observations(5, items=2, periods=5)
    with pytest.raises(InvalidArgument) as err:
        fit_elasticities(obs.drop(columns=["units"]))
    assert err.value.field == "units"


def test_observations_from_events_takes_the_list_price_and_zero_sale_periods() -> None:
    ts = pd.to_datetime(
        ["2026-01-01 10:00", "2026-01-01 11:00", "2026-01-01 12:00", "2026-01-02 09:00"], utc=True
    )
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3", "u1"],
            "item_id": ["X", "X", "X", "X"],
            "event_type": ["purchase", "purchase", "view", "view"],
            "timestamp": ts,
            "quantity": [1, 12, 1, 1],
            "unit_price": [10.0, 8.5, 10.0, 11.0],
        }
    )
    items = pd.DataFrame({"item_id": ["X"], "category": ["c"]})
    obs = observations_from_events(events, items)
    assert "user_id" not in obs.columns
    assert obs["units"].tolist() == [13.0, 0.0]
    # The tier price 8.5 of the bulk line is not the list price of the day.
    assert obs["price"].tolist() == [10.0, 11.0]


def test_observations_without_zero_sale_periods_warn() -> None:
    obs, _ = _observations(6, items=4, periods=60)
    with pytest.warns(UserWarning, match="zero-sale"):
        fit_elasticities(obs[obs["units"] > 0])
