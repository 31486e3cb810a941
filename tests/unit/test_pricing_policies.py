"""Tests of pricing.policies: the registry (rule G1) and each policy's proposal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import pytest

from fairshelf.errors import NotFound, PolicyRejected
from pricing.context import ItemState, PublicContext
from pricing.optimizer import best_price_in_band
from pricing.policies.registry import load_policy, policy_names, register_policy
from pricing.policy import PricingPolicy, Proposal

CTX = PublicContext(at=datetime(2026, 1, 1, tzinfo=UTC), competitor_prices={"A": 8.0})
ITEM = ItemState("A", "c", base_price=10.0, unit_cost=4.0, elasticity=-2.0, current_price=10.0)


def test_registry_has_the_four_policies_and_refuses_shopper_inputs() -> None:
    assert {"static", "markdown", "elasticity_optimal", "competitor_match"} <= set(policy_names())
    with pytest.raises(NotFound):
        load_policy("nope")

    class ByLoyalty(PricingPolicy):
        name: ClassVar[str] = "by_loyalty"
        version: ClassVar[str] = "1"
        inputs: ClassVar[frozenset[str]] = frozenset({"base_price", "loyalty"})

        def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
            return Proposal(item.base_price)

    with pytest.raises(PolicyRejected):
        register_policy(ByLoyalty)
    assert "by_loyalty" not in policy_names()


def test_static_and_competitor_match() -> None:
    assert load_policy("static").propose(ITEM, CTX, "revenue").price == 10.0
    assert load_policy("competitor_match").propose(ITEM, CTX, "revenue").price == 8.0
    under = load_policy("competitor_match", undercut_pct=0.1).propose(ITEM, CTX, "revenue")
    assert under.price == pytest.approx(7.2)
    dear = PublicContext(at=CTX.at, competitor_prices={"A": 12.0})
    held = load_policy("competitor_match", lower_only=True).propose(ITEM, dear, "revenue")
    assert held.price == 10.0 and held.reason_codes == ("COMPETITOR_DEARER",)
    none = load_policy("competitor_match").propose(ITEM, PublicContext(at=CTX.at), "revenue")
    assert none.reason_codes == ("NO_COMPETITOR_PRICE",)


def test_elasticity_optimal_margin_is_the_lerner_price() -> None:
    p = load_policy("elasticity_optimal").propose(ITEM, CTX, "margin")
    assert p.price == pytest.approx(8.0)  # cost * e / (1 + e) = 4 * 2
    low = load_policy("elasticity_optimal").propose(ITEM, CTX, "revenue")
    assert low.price < 1.0 and "ELASTIC_LOWER" in low.reason_codes
    assert best_price_in_band("revenue", 10.0, -0.5, 4.0, 8.0, 12.0) == 12.0
    assert best_price_in_band("revenue", 10.0, -1.5, 4.0, 8.0, 12.0) == 8.0
    assert best_price_in_band("margin", 10.0, -2.0, 4.0, 9.0, 12.0) == 9.0


def test_markdown_clears_stock_and_holds_when_on_track() -> None:
    slow = ItemState(
        "A", "c", base_price=10.0, stock=100, days_left=10, recent_demand=5.0, elasticity=-2.0
    )
    p = load_policy("markdown").propose(slow, CTX, "sell_through")
    # Needs 10/day instead of 5: (2) ** (1 / -2) = 0.7071 of the price.
    assert p.price == pytest.approx(7.071, abs=1e-3) and p.reason_codes == ("MARKDOWN_CLEARANCE",)
    fast = ItemState("A", "c", base_price=10.0, stock=10, days_left=10, recent_demand=5.0)
    assert load_policy("markdown").propose(fast, CTX, "sell_through").price == 10.0
    unknown = ItemState("A", "c", base_price=10.0)
    assert load_policy("markdown").propose(unknown, CTX, "x").reason_codes == (
        "MARKDOWN_NO_CLEARANCE_DATA",
    )
