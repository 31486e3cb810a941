"""Tests for training.data.synthetic (the synthetic storefront generator)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairshelf.errors import InvalidArgument
from pricing.demand_curve import conversion
from recsys.schema import EVENT_COLUMNS, EVENT_TYPES, ITEM_COLUMNS
from training.data.canonical import EVENT_DTYPES
from training.data.synthetic import SyntheticStore, generate_store, load_store
from training.data.synthetic_catalog import CATEGORIES
from training.data.synthetic_sessions import SessionModel


def test_schema_and_files(tiny_store: SyntheticStore) -> None:
    ev = tiny_store.events
    assert list(ev.columns) == list(EVENT_COLUMNS)
    assert {str(c): str(t) for c, t in ev.dtypes.items()} == {
        c: str(pd.Series([], dtype=t).dtype) for c, t in EVENT_DTYPES.items()
    }
    assert ev["timestamp"].dt.tz is not None
    assert set(ev["event_type"]) <= set(EVENT_TYPES)
    assert set(ev["event_type"]) >= {"impression", "view", "click", "add_to_cart", "purchase"}
    assert ev["event_id"].is_unique
    assert ev["timestamp"].is_monotonic_increasing
    assert (ev["unit_price"] > 0).all()
    assert set(ITEM_COLUMNS) <= set(tiny_store.items.columns)
    assert tiny_store.items["item_id"].str.fullmatch(r"I\d{5}").all()
    assert tiny_store.users["user_id"].str.fullmatch(r"U\d{6}").all()
    assert set(ev["item_id"]) <= set(tiny_store.items["item_id"])
    assert set(ev["user_id"]) <= set(tiny_store.users["user_id"])
    for path in (tiny_store.paths.truth_items, tiny_store.paths.truth_users):
        assert path.is_file()
    assert tiny_store.truth["seed"] == 7


def test_catalog_truth(tiny_store: SyntheticStore) -> None:
    items = tiny_store.items
    assert (items["unit_cost"] < items["base_price"]).all()
    assert (items["stock"] == 0).any() and (items["stock"] > 0).any()
    assert 6 <= items["category"].nunique() <= 12
    assert items["category"].str.contains("/").all()
    ti = tiny_store.truth_items
    cat_mean = ti.groupby("category")["category_elasticity"].first()
    assert cat_mean.between(-2.5, -0.8).all()
    assert (ti["true_elasticity"] < 0).all()
    assert set(tiny_store.users["tenure"]) == {"new", "loyal"}
    assert set(tiny_store.users["device"]) <= {"ios", "android", "web"}


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = generate_store(tmp_path / "a", users=40, items=20, days=10, seed=3)
    b = generate_store(tmp_path / "b", users=40, items=20, days=10, seed=3)
    c = generate_store(tmp_path / "c", users=40, items=20, days=10, seed=4)
    pd.testing.assert_frame_equal(pd.read_parquet(a.events), pd.read_parquet(b.events))
    pd.testing.assert_frame_equal(pd.read_parquet(a.truth_items), pd.read_parquet(b.truth_items))
    assert not pd.read_parquet(a.events).equals(pd.read_parquet(c.events))


def test_users_buy_mostly_in_their_favourite_categories(tiny_store: SyntheticStore) -> None:
    buys = tiny_store.events[tiny_store.events["event_type"] == "purchase"]
    cats = tiny_store.items.set_index("item_id")["category"]
    tu = tiny_store.truth_users.set_index("user_id")
    bought_cat = buys["item_id"].map(cats)
    fav = buys["user_id"].map(tu["favourite_category"])
    second = buys["user_id"].map(tu["second_category"])
    share = ((bought_cat == fav) | (bought_cat == second)).mean()
    # 10 categories: without planted tastes about 15 % of purchases would fall in favourites.
    assert share > 0.6


def test_loyal_users_shop_more(tiny_store: SyntheticStore) -> None:
    sessions = tiny_store.events.groupby("user_id")["session_id"].nunique()
    tenure = tiny_store.users.set_index("user_id")["tenure"]
    per_user = sessions.reindex(tenure.index, fill_value=0).groupby(tenure).mean()
    assert per_user["loyal"] > 1.5 * per_user["new"]


def test_price_is_the_same_for_every_shopper_on_a_day(tiny_store: SyntheticStore) -> None:
    ev = tiny_store.events[tiny_store.events["event_type"] != "return"]
    day = ev["timestamp"].dt.floor("D")
    per_day = ev.groupby([ev["item_id"], day])["unit_price"].nunique()
    assert (per_day == 1).all()
    base = ev["item_id"].map(tiny_store.items.set_index("item_id")["base_price"])
    ratio = ev["unit_price"] / base
    assert ratio.between(0.79, 1.21).all()
    assert (ratio != 1.0).mean() > 0.2


def test_purchase_rate_falls_with_price(tmp_path: Path) -> None:
    # Few items, many shoppers: enough purchases per item for the demand law to show.
    store = load_store(generate_store(tmp_path, users=2500, items=10, days=40, seed=11).root)
    ev = store.events
    base = ev["item_id"].map(store.items.set_index("item_id")["base_price"])
    band = np.sign(np.round(np.log(ev["unit_price"] / base), 3))
    views = ev[ev["event_type"] == "view"].groupby(band).size()
    buys = ev[ev["event_type"] == "purchase"].groupby(band).size()
    rate = buys / views
    assert rate[-1.0] > rate[0.0] > rate[1.0]


def test_buy_again_and_returns(tiny_store: SyntheticStore) -> None:
    buys = tiny_store.events[tiny_store.events["event_type"] == "purchase"]
    repeats = buys.duplicated(["user_id", "item_id"]).mean()
    assert repeats > 0.1
    assert (tiny_store.events["event_type"] == "return").any()


@pytest.mark.parametrize(
    ("users", "items", "days", "start"),
    [
        (0, 20, 5, "2026-01-01"),
        (5, len(CATEGORIES) - 1, 5, "2026-01-01"),
        (5, 20, 0, "x"),
        (5, 20, 5, "not a date"),
    ],
)
def test_rejects_bad_arguments(
    tmp_path: Path, users: int, items: int, days: int, start: str
) -> None:
    with pytest.raises(InvalidArgument):
        generate_store(tmp_path, users=users, items=items, days=days, seed=1, start=start)


def test_truth_json_records_the_demand_law(tiny_store: SyntheticStore) -> None:
    truth = json.loads(tiny_store.paths.truth.read_text())
    assert truth["demand_law"]["function"] == "pricing.demand_curve.conversion"
    assert truth["events"] == len(tiny_store.events)


def test_purchases_per_view_follow_the_demand_law(tmp_path: Path) -> None:
    # Without buy-again views every view converts by the demand law alone, so observed
    # purchases must match the law's expectation in every price band, not just fall with price.
    model = SessionModel(rebuy_rounds=0, mean_filler_impressions=0.0)
    paths = generate_store(tmp_path, users=2500, items=12, days=40, seed=21, model=model)
    store = load_store(paths.root)
    truth = store.truth_items.set_index("item_id")
    views = store.events[store.events["event_type"] == "view"]
    buys = store.events[store.events["event_type"] == "purchase"]
    expected = conversion(
        views["unit_price"].to_numpy(),
        views["item_id"].map(truth["base_price"]).to_numpy(),
        views["item_id"].map(truth["base_conversion"]).to_numpy(),
        views["item_id"].map(truth["true_elasticity"]).to_numpy(),
    )
    ratio = views["unit_price"] / views["item_id"].map(truth["base_price"])
    band = np.where(ratio < 0.97, "promotion", np.where(ratio > 1.03, "markup", "base"))
    exp_by_band = pd.Series(expected, index=views.index).groupby(band).sum()
    b_ratio = buys["unit_price"] / buys["item_id"].map(truth["base_price"])
    b_band = np.where(b_ratio < 0.97, "promotion", np.where(b_ratio > 1.03, "markup", "base"))
    obs_by_band = buys.groupby(b_band).size()
    for name in ("promotion", "base", "markup"):
        assert obs_by_band[name] > 400
        assert obs_by_band[name] / exp_by_band[name] == pytest.approx(1.0, abs=0.07)
    # Promotions lift conversion by about what the true elasticities say.
    assert (obs_by_band["promotion"] / (band == "promotion").sum()) > (
        obs_by_band["markup"] / (band == "markup").sum()
    )
