"""Tests of pricing.guardrail_rules and pricing.guardrails: validation, resolution, enforcement."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairshelf.errors import FailedPrecondition, InvalidArgument, NotFound
from pricing.guardrail_rules import Guardrail
from pricing.guardrails import GuardrailSet, diff_sets, enforce, item_band


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"floor": 10.0, "ceiling": 5.0}, "floor"),
        ({"min_margin": -0.1}, "min_margin"),
        ({"floor": 0.0}, "floor"),
        ({"ceiling": -3.0}, "ceiling"),
        ({"min_ratio": 1.2, "max_ratio": 1.1}, "min_ratio"),
        ({"max_change_pct": 0.0}, "max_change_pct"),
        ({"max_change_pct": 1.5}, "max_change_pct"),
        ({"price_ending": 1.2}, "price_ending"),
        ({"price_ending": 0.995}, "price_ending"),
        ({"objective": "world_domination"}, "objective"),
        ({"floor": math.nan}, "floor"),
    ],
)
def test_invalid_rules_are_refused_naming_the_field(
    fields: dict[str, object], bad_field: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        Guardrail.from_dict({"scope": "global", **fields})
    assert err.value.field == bad_field


def test_scope_and_key_are_checked() -> None:
    with pytest.raises(InvalidArgument) as err:
        Guardrail.from_dict({"scope": "category", "key": "  "})
    assert err.value.field == "key"
    with pytest.raises(InvalidArgument) as err:
        Guardrail.from_dict({"scope": "planet", "key": "x"})
    assert err.value.field == "scope"
    with pytest.raises(InvalidArgument) as err:
        Guardrail.from_dict({"scope": "global", "flor": 3})
    assert err.value.field == "flor"
    with pytest.raises(InvalidArgument) as err:
        Guardrail.from_dict({"scope": "global", "floor": "cheap"})
    assert err.value.field == "floor"


def test_narrowest_scope_wins_field_by_field() -> None:
    gs = GuardrailSet()
    gs = gs.with_rule(Guardrail("global", floor=1.0, ceiling=500.0, max_change_pct=0.2))
    gs = gs.with_rule(Guardrail("category", "home", ceiling=200.0, price_ending=0.99))
    gs = gs.with_rule(Guardrail("category", "home/kitchen", ceiling=100.0))
    gs = gs.with_rule(Guardrail("item", "I1", floor=20.0, objective="margin"))
    assert gs.version == 4
    eff = gs.effective("I1", "home/kitchen")
    assert (eff.floor, eff.ceiling, eff.price_ending) == (20.0, 100.0, 0.99)
    assert eff.max_change_pct == 0.2 and eff.objective == "margin"
    assert eff.sources["floor"] == "item:I1"
    assert eff.sources["ceiling"] == "category:home/kitchen"
    assert eff.sources["price_ending"] == "category:home"
    assert eff.sources["max_change_pct"] == "global"
    assert eff.sources["min_ratio"] == "default"
    assert eff.scope == "item:I1"
    other = gs.effective("I2", "home/garden")
    assert other.ceiling == 200.0 and other.floor == 1.0 and other.scope == "category:home"
    assert gs.effective("I3", "toys").scope == "global"


def test_inherited_bounds_that_cross_are_refused_at_put() -> None:
    gs = GuardrailSet().with_rule(Guardrail("global", ceiling=50.0))
    with pytest.raises(FailedPrecondition) as err:
        gs.with_rule(Guardrail("category", "home", floor=60.0))
    assert err.value.field == "floor"
    assert "category:home" in str(err.value)


def test_item_floor_above_category_ceiling_narrowest_wins() -> None:
    gs = GuardrailSet().with_rule(Guardrail("category", "home", ceiling=40.0))
    gs = gs.with_rule(Guardrail("item", "I1", floor=50.0))
    eff = gs.effective("I1", "home")
    assert eff.floor == 50.0 and eff.ceiling is None
    assert eff.sources["ceiling"] == "overridden by item:I1"
    band = item_band(eff, base_price=45.0, unit_cost=None)
    assert band.lower == 50.0 and band.upper == 90.0  # default max_ratio 2 x base


def test_diff_and_document_round_trip() -> None:
    a = GuardrailSet().with_rule(Guardrail("global", floor=1.0))
    b = a.with_rule(Guardrail("global", floor=2.0, price_ending=0.99))
    rows = diff_sets(a, b)
    assert {"scope": "global", "field": "floor", "old": 1.0, "new": 2.0} in rows
    assert {"scope": "global", "field": "price_ending", "old": None, "new": 0.99} in rows
    again = GuardrailSet.from_document(b.version, b.to_document())
    assert again == b
    with pytest.raises(NotFound):
        b.get("item", "nope")
    assert b.without("global").rules == {}


def test_band_conflict_precedence_margin_versus_ceiling() -> None:
    # A category margin that the global ceiling cannot meet: the narrower scope (category) wins.
    gs = GuardrailSet().with_rule(Guardrail("global", ceiling=10.0))
    gs = gs.with_rule(Guardrail("category", "c", min_margin=0.5))
    band = item_band(gs.effective("I", "c"), base_price=9.0, unit_cost=8.0)
    assert band.lower == pytest.approx(12.0) and band.upper == pytest.approx(18.0)
    assert "GUARDRAIL_CONFLICT" in band.notes
    # Same scope: the upper bound (shopper protection) wins.
    gs2 = GuardrailSet().with_rule(Guardrail("global", ceiling=10.0, min_margin=0.5))
    band2 = item_band(gs2.effective("I", "c"), base_price=9.0, unit_cost=8.0)
    assert band2.upper == 10.0 and band2.lower <= band2.upper


def test_bounds_that_touch_within_float_error_are_one_price_not_a_conflict() -> None:
    # Cost 12 with a margin of 2e-11 sits 2.5e-10 above a ceiling of 12: the band is 12.00,
    # not a conflict that drops the margin and lets a 10.00 proposal through below cost.
    gs = GuardrailSet().with_rule(Guardrail("global", ceiling=12.0, min_margin=2.1e-11))
    band = item_band(gs.effective("A", "c"), base_price=20.0, unit_cost=12.0)
    assert "GUARDRAIL_CONFLICT" not in band.notes
    assert enforce(10.0, band, []) == (12.0, ["RAISED_TO_LOWER_BOUND"])
    # A real crossing still is one (same scope: the ceiling stands).
    gs = GuardrailSet().with_rule(Guardrail("global", ceiling=12.0, min_margin=0.001))
    band = item_band(gs.effective("A", "c"), base_price=20.0, unit_cost=12.0)
    assert "GUARDRAIL_CONFLICT" in band.notes and band.upper == 12.0
    assert enforce(10.0, band, [])[0] == 10.0


def test_enforce_applies_change_limit_then_ending() -> None:
    gs = GuardrailSet().with_rule(
        Guardrail("global", floor=5.0, ceiling=100.0, max_change_pct=0.1, price_ending=0.99)
    )
    band = item_band(gs.effective("I", "c"), base_price=50.0, unit_cost=None)
    price, codes = enforce(80.0, band, [50.0])
    assert price == 54.99 and "CHANGE_LIMITED" in codes
    price, codes = enforce(1.0, band, [])
    assert price == 25.99 and "RAISED_TO_LOWER_BOUND" in codes  # default min_ratio 0.5
    price, codes = enforce(50.2, band, [50.0, 50.3])
    assert 50.3 * 0.9 <= price <= 50.0 * 1.1 and round(price * 100) % 100 == 99


@settings(max_examples=300, deadline=None)
@given(
    floor=st.floats(1, 100),
    width=st.floats(0, 100),
    margin=st.none() | st.floats(0, 1),
    cost=st.none() | st.floats(0.5, 150),
    base=st.floats(1, 200),
    change=st.none() | st.floats(0.01, 0.5),
    ending=st.none() | st.sampled_from([0.99, 0.95, 0.0, 0.49]),
    target=st.floats(0.01, 1000),
    last=st.floats(1, 300),
)
def test_enforced_price_never_leaves_the_band(
    floor: float,
    width: float,
    margin: float | None,
    cost: float | None,
    base: float,
    change: float | None,
    ending: float | None,
    target: float,
    last: float,
) -> None:
    rule = Guardrail(
        "global",
        floor=floor,
        ceiling=floor + width,
        min_margin=margin,
        max_change_pct=change,
        price_ending=ending,
        min_ratio=0.01,
        max_ratio=100.0,
    )
    eff = GuardrailSet().with_rule(rule).effective("I", "c")
    band = item_band(eff, base_price=base, unit_cost=cost)
    price, codes = enforce(target, band, [last])
    assert band.lower - 1e-9 <= price <= band.upper + 1e-9
    assert floor - 1e-9 <= price <= floor + width + 1e-9
    if "GUARDRAIL_CONFLICT" not in codes and margin is not None and cost is not None:
        assert price >= cost * (1 + margin) - 1e-9
    if change is not None and "BAND_OVERRIDES_CHANGE_LIMIT" not in codes:
        assert last * (1 - change) - 1e-9 <= price <= last * (1 + change) + 1e-9
    if ending is not None and "ENDING_UNREACHABLE" not in codes and "CENT_UNREACHABLE" not in codes:
        assert round(price * 100) % 100 == round(ending * 100)
