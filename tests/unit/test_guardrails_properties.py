"""Property tests: under any valid guardrail set, no quote leaves its effective guardrails.

Random guardrail sets over the three scopes, random proposals and random quote times drive the
real engine; every served price is then checked by the independent auditor
(:mod:`pricing.guardrail_audit`), which resolves and checks the rules with its own code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fairshelf.errors import FailedPrecondition, InvalidArgument
from pricing.catalog import PricingCatalog
from pricing.context import ItemState, PublicContext
from pricing.engine import PricingEngine
from pricing.guardrail_audit import GuardrailAuditor, ServedPrice
from pricing.guardrail_rules import Guardrail
from pricing.guardrails import GuardrailSet
from pricing.policy import PricingPolicy, Proposal

ITEMS = pd.DataFrame(
    {
        "item_id": ["A", "B", "C", "D"],
        "category": ["home/kitchen", "home/garden", "toys", "home/kitchen"],
        "base_price": [20.0, 3.5, 149.0, 0.99],
        "unit_cost": [12.0, 1.0, 140.0, 0.2],
    }
)
T0 = datetime(2026, 4, 1, tzinfo=UTC)


class TablePolicy(PricingPolicy):
    """Proposes base x a factor read from a table by hour: anything from far below to far above."""

    name: ClassVar[str] = "table"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = frozenset({"base_price", "at", "item_id"})

    def __init__(self, factors: list[float]) -> None:
        self.factors = factors

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        k = int(ctx.at.timestamp() // 3600) + ord(item.item_id[0])
        return Proposal(item.base_price * self.factors[k % len(self.factors)])


opt_pos = st.none() | st.floats(0.5, 200)
rule_fields = st.fixed_dictionaries(
    {
        "floor": opt_pos,
        "ceiling": opt_pos,
        "min_ratio": st.none() | st.floats(0.3, 1.0),
        "max_ratio": st.none() | st.floats(1.0, 3.0),
        "min_margin": st.none() | st.floats(0, 0.6),
        "max_change_pct": st.none() | st.floats(0.01, 0.5),
        "price_ending": st.none() | st.sampled_from([0.99, 0.95, 0.0, 0.5]),
    }
)
scopes = st.sampled_from(
    [
        ("global", ""),
        ("category", "home"),
        ("category", "home/kitchen"),
        ("category", "toys"),
        ("item", "A"),
        ("item", "B"),
        ("item", "D"),
    ]
)


@st.composite
def guardrail_sets(draw: st.DrawFn) -> GuardrailSet:
    gs = GuardrailSet()
    for _ in range(draw(st.integers(0, 6))):
        scope, key = draw(scopes)
        fields = draw(rule_fields)
        try:
            gs = gs.with_rule(Guardrail(scope, key, **fields))  # type: ignore[arg-type]
        except (InvalidArgument, FailedPrecondition):
            continue  # refused sets are the validation's business, not this property's
    return gs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gs=guardrail_sets(),
    factors=st.lists(st.floats(0.01, 50.0), min_size=1, max_size=12),
    gaps=st.lists(st.integers(1, 20), min_size=3, max_size=25),
)
def test_no_quote_leaves_its_effective_guardrails(
    gs: GuardrailSet, factors: list[float], gaps: list[int]
) -> None:
    engine = PricingEngine(PricingCatalog.from_frames(ITEMS), gs, TablePolicy(factors))
    auditor = GuardrailAuditor(gs.rules.values())
    ids = [str(i) for i in ITEMS["item_id"]]
    cat_of = dict(zip(ids, ITEMS["category"].astype(str), strict=True))
    base_of = dict(zip(ids, ITEMS["base_price"].astype(float), strict=True))
    cost_of = dict(zip(ids, ITEMS["unit_cost"].astype(float), strict=True))
    at = T0
    for gap in gaps:
        at += timedelta(hours=gap)
        for d in engine.decide(ids, PublicContext(at=at)):
            i = d.item_id
            auditor.check(
                ServedPrice(
                    i,
                    cat_of[i],
                    base_of[i],
                    cost_of[i],
                    d.epoch_start.timestamp(),
                    d.final_price,
                )
            )
            assert d.final_price > 0
    assume(auditor.result.checked > 0)
    assert auditor.result.total_violations == 0, auditor.result.examples
