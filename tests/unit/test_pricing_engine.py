"""Tests of pricing.engine: epochs, caching, guardrails on every decision, the 24 h rule."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairshelf.errors import InvalidArgument, NotFound, PolicyRejected
from pricing.catalog import PricingCatalog
from pricing.context import PublicContext
from pricing.engine import PricingEngine, item_context_key
from pricing.epochs import EpochClock
from pricing.guardrail_rules import Guardrail
from pricing.guardrails import GuardrailSet, item_band
from pricing.policies.competitor_match import CompetitorMatchPolicy
from pricing.policies.elasticity_optimal import ElasticityOptimalPolicy
from pricing.policies.static import StaticPolicy
from pricing.policy import PricingPolicy, Proposal

T0 = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)


def _catalog() -> PricingCatalog:
    items = pd.DataFrame(
        {
            "item_id": ["A", "B", "C"],
            "category": ["home/kitchen", "home/garden", "toys"],
            "base_price": [20.0, 50.0, 9.99],
            "unit_cost": [10.0, 45.0, 2.0],
            "stock": [100, 10, 5],
        }
    )
    elast = pd.DataFrame(
        {
            "item_id": ["A", "B"],
            "category": ["home/kitchen", "home/garden"],
            "elasticity": [-2.5, -0.5],
            "stderr": [0.1, 0.2],
        }
    )
    return PricingCatalog.from_frames(items, elast)


def test_same_epoch_same_price_and_epoch_fields() -> None:
    gs = GuardrailSet().with_rule(Guardrail("global", max_change_pct=0.1))
    engine = PricingEngine(_catalog(), gs, ElasticityOptimalPolicy())
    first = engine.decide(["A", "B"], PublicContext(at=T0))
    again = engine.decide(["B", "A"], PublicContext(at=T0 + timedelta(minutes=40)))
    assert [d.final_price for d in first] == [d.final_price for d in reversed(again)]
    a = first[0]
    assert a.epoch == EpochClock().index(T0) and a.epoch_start.minute == 0
    assert a.policy == "elasticity_optimal" and "elasticity" in a.inputs
    assert a.guardrail_version == 1 and a.guardrail_scope == "global"
    assert a.adjustment == pytest.approx(a.final_price - a.base_price)
    # Elastic item A goes down, inelastic item B goes up; the lower bound is the cost-based
    # margin (default min_margin 0) or the default 0.5 ratio, whichever is higher.
    assert a.final_price < 20.0 and first[1].final_price > 50.0
    # No dynamic price yet: the shelf price (20) is the price in force, so the 10% limit binds
    # from the first quote (SPEC §6) and says so.
    assert a.final_price == 18.0 and "CHANGE_LIMITED" in a.reason_codes
    assert "CHANGE_FROM_BASE_PRICE" in a.reason_codes
    assert first[1].final_price == pytest.approx(first[1].base_price * 1.1)


def test_first_dynamic_price_without_a_change_limit_is_free_within_the_band() -> None:
    engine = PricingEngine(_catalog(), GuardrailSet(), ElasticityOptimalPolicy())
    a = engine.decide(["A"], PublicContext(at=T0))[0]
    assert a.final_price == 10.0 and "RAISED_TO_LOWER_BOUND" in a.reason_codes
    assert "CHANGE_FROM_BASE_PRICE" not in a.reason_codes


def test_change_limit_binds_across_epochs() -> None:
    gs = GuardrailSet().with_rule(Guardrail("global", max_change_pct=0.1))
    engine = PricingEngine(_catalog(), gs, StaticPolicy())
    engine.decide(["A"], PublicContext(at=T0))
    engine.set_policy(ElasticityOptimalPolicy())
    d = engine.decide(["A"], PublicContext(at=T0 + timedelta(hours=1)))[0]
    assert d.final_price == 18.0 and "CHANGE_LIMITED" in d.reason_codes
    d2 = engine.decide(["A"], PublicContext(at=T0 + timedelta(hours=2)))[0]
    assert d2.final_price == 18.0  # 20 still in force within 24 h
    d3 = engine.decide(["A"], PublicContext(at=T0 + timedelta(hours=26)))[0]
    assert d3.final_price == pytest.approx(16.2)


def test_competitor_price_is_part_of_the_item_context() -> None:
    engine = PricingEngine(_catalog(), GuardrailSet(), CompetitorMatchPolicy())
    plain = engine.decide(["A"], PublicContext(at=T0))[0]
    matched = engine.decide(["A"], PublicContext(at=T0, competitor_prices={"A": 18.5}))[0]
    assert plain.final_price == 20.0 and matched.final_price == 18.5
    assert "COMPETITOR_MATCH" in matched.reason_codes
    # Another item's competitor price does not change A's context.
    other = engine.decide(["A"], PublicContext(at=T0, competitor_prices={"B": 1.0}))[0]
    assert other is plain


def test_unknown_item_and_shopper_policy_are_refused() -> None:
    engine = PricingEngine(_catalog(), GuardrailSet(), StaticPolicy())
    with pytest.raises(NotFound) as err:
        engine.decide(["A", "nope"], PublicContext(at=T0))
    assert err.value.field == "item_ids"

    class Snoop(PricingPolicy):
        name = "snoop"
        version = "1"
        inputs = frozenset({"base_price", "loyalty"})

        def propose(self, item, ctx, objective):  # type: ignore[no-untyped-def]
            return Proposal(item.base_price)

    with pytest.raises(PolicyRejected):
        PricingEngine(_catalog(), GuardrailSet(), Snoop())


def test_epoch_clock_validation() -> None:
    with pytest.raises(InvalidArgument):
        EpochClock(timedelta(minutes=7))
    clock = EpochClock(timedelta(days=1))
    assert clock.start(clock.index(T0)).hour == 0


class _Erratic(PricingPolicy):
    """Proposes a price drawn from a fixed table, to drive the engine everywhere."""

    name = "erratic"
    version = "1"
    inputs = frozenset({"item_id", "at"})

    def __init__(self, table: list[float]) -> None:
        self.table = table

    def propose(self, item, ctx, objective):  # type: ignore[no-untyped-def]
        hour = int(ctx.at.timestamp() // 3600)
        return Proposal(self.table[hour % len(self.table)] * (1 + len(item.item_id) % 2))


@settings(max_examples=40, deadline=None)
@given(
    table=st.lists(st.floats(0.5, 500), min_size=1, max_size=30),
    change=st.floats(0.02, 0.5),
    floor=st.floats(1, 30),
    width=st.floats(0.5, 80),
    ending=st.none() | st.sampled_from([0.99, 0.5]),
    steps=st.lists(st.integers(1, 30), min_size=5, max_size=40),
)
def test_no_price_moves_more_than_allowed_in_24h(
    table: list[float],
    change: float,
    floor: float,
    width: float,
    ending: float | None,
    steps: list[int],
) -> None:
    rule = Guardrail(
        "global", floor=floor, ceiling=floor + width, max_change_pct=change, price_ending=ending
    )
    gs = GuardrailSet().with_rule(rule)
    engine = PricingEngine(_catalog(), gs, _Erratic(table))
    served: list[tuple[datetime, float]] = []
    at = T0
    for step in steps:
        at += timedelta(hours=step)
        d = engine.decide(["C"], PublicContext(at=at))[0]
        # Never outside the item's effective static band.
        band = engine.band("C")
        assert band.lower - 1e-9 <= d.final_price <= band.upper + 1e-9
        served.append((d.epoch_start, d.final_price))
    # Independent check: any two prices in force less than 24 h apart differ by <= change.
    for i, (t_i, p_i) in enumerate(served):
        for t_j, p_j in served[i + 1 :]:
            next_start = served[i + 1][0] if i + 1 < len(served) else t_j
            if t_j - next_start < timedelta(hours=24) or t_j - t_i <= timedelta(hours=24):
                assert p_i * (1 - change) - 1e-9 <= p_j <= p_i * (1 + change) + 1e-9


def test_warm_prices_the_catalogue_for_the_epoch() -> None:
    engine = PricingEngine(_catalog(), GuardrailSet(), StaticPolicy())
    assert engine.warm(PublicContext(at=T0)) == 3
    before = engine.history.last("C", T0)
    assert before == 9.99
    # Later requests in the epoch are served from the warmed decisions.
    d = engine.decide(["C"], PublicContext(at=T0 + timedelta(minutes=30)))[0]
    assert d.final_price == 9.99 and d.epoch == EpochClock().index(T0)


class _HalfOfCurrent(PricingPolicy):
    """Proposes half the price in force, to show the engine hands it the served price."""

    name = "half"
    version = "1"
    inputs = frozenset({"current_price", "base_price"})

    def propose(self, item, ctx, objective):  # type: ignore[no-untyped-def]
        return Proposal((item.current_price or item.base_price) / 2)


def test_policy_sees_the_price_served_in_the_previous_epoch() -> None:
    gs = GuardrailSet().with_rule(Guardrail("global", min_ratio=0.01))
    engine = PricingEngine(_catalog(), gs, _HalfOfCurrent())
    prices = [engine.decide(["C"], PublicContext(at=T0 + timedelta(hours=h)))[0] for h in range(3)]
    # 9.99 / 2, then half of that, then held at the unit cost (default minimum margin 0).
    assert [d.final_price for d in prices] == [5.0, 2.5, 2.0]
    assert engine.catalog.get("C").current_price is None  # the catalogue itself is untouched


def _cat_items() -> PricingCatalog:
    items = pd.DataFrame(
        {
            "item_id": ["K1", "K2", "K3", "G1"],
            "category": ["home/kitchen", "home/kitchen", "home/kitchen", "home/garden"],
            "base_price": [20.0, 30.0, 40.0, 50.0],
            "unit_cost": [10.0, 10.0, 10.0, 10.0],
        }
    )
    return PricingCatalog.from_frames(items, pd.DataFrame())


def test_band_shares_category_resolution_but_honours_item_rules_and_swaps() -> None:
    gs = (
        GuardrailSet()
        .with_rule(Guardrail("category", "home", max_ratio=1.5))
        .with_rule(Guardrail("category", "home/kitchen", min_ratio=0.8))
        .with_rule(Guardrail("item", "K2", ceiling=31.0))
    )
    engine = PricingEngine(_cat_items(), gs, StaticPolicy())
    for item in ("K1", "K2", "K3", "G1"):
        state = engine.catalog.get(item)
        expected = item_band(gs.effective(item, state.category), state.base_price, 10.0)
        assert engine.band(item) == expected
    assert engine.band("K2").scope == "item:K2" and engine.band("K3").upper == 60.0
    # A new set replaces every band resolved under the old one.
    engine.set_guardrails(gs.with_rule(Guardrail("category", "home/kitchen", max_ratio=1.1)))
    assert engine.band("K3").upper == pytest.approx(44.0)
    assert engine.band("K1").upper == pytest.approx(22.0)


def test_decision_id_is_the_digest_of_the_decision_identity() -> None:
    # The id is part of what is recorded: it must stay the digest of this exact tuple.
    engine = PricingEngine(_catalog(), GuardrailSet(), CompetitorMatchPolicy())
    for ctx in (
        PublicContext(at=T0),
        PublicContext(at=T0, region="CN-31", competitor_prices={"A": 18.5}, promotions=("X",)),
    ):
        for d in engine.decide(["A", "B", "C"], ctx):
            ident = (
                d.item_id,
                d.epoch,
                item_context_key(d.item_id, ctx),
                d.guardrail_version,
                d.policy,
                d.policy_version,
                d.final_price,
            )
            digest = hashlib.blake2b(repr(ident).encode(), digest_size=8).hexdigest()
            assert d.decision_id == digest
