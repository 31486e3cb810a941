"""pricing/fairness/guardrail_preview.py: the dry run prices as the engine would, records
nothing, and counts moves against hand-computed answers (static policy: price = base price)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest

from fairshelf.errors import NotFound, PermissionDenied
from pricing.catalog import PricingCatalog
from pricing.context import PublicContext
from pricing.engine import PricingEngine
from pricing.fairness.guardrail_preview import preview_guardrails
from pricing.guardrail_rules import Guardrail
from pricing.guardrails import GuardrailSet
from pricing.policies.static import StaticPolicy
from pricing.price_history import InMemoryPriceHistory

AT = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)


def _engine(history: InMemoryPriceHistory) -> PricingEngine:
    items = pd.DataFrame(
        {
            "item_id": ["A", "B", "C"],
            "category": ["home/kitchen", "home/garden", "toys"],
            "base_price": [20.0, 50.0, 9.99],
            "unit_cost": [10.0, 20.0, 2.0],
        }
    )
    catalog = PricingCatalog.from_frames(items, pd.DataFrame())
    return PricingEngine(catalog, GuardrailSet(), StaticPolicy(), history=history)


def test_preview_counts_moves_and_changes_nothing() -> None:
    history = InMemoryPriceHistory()
    engine = _engine(history)
    proposed = engine.guardrails.with_rule(Guardrail("category", "home", ceiling=15.0))
    out = preview_guardrails(engine, object(), proposed, ["A", "B", "C"], AT)
    assert (out.items, out.changed, out.up, out.down) == (3, 2, 0, 2)
    moves = {m.item_id: m for m in out.largest}
    assert set(moves) == {"A", "B"}
    assert (moves["B"].current, moves["B"].proposed) == (50.0, 15.0)
    assert out.largest[0].item_id == "B"  # -70 % before -25 %
    assert math.isclose(moves["A"].pct, -25.0)
    counts = {(lo, hi): n for lo, hi, n in out.bins}
    assert counts[(-math.inf, -20.0)] == 2 and counts[(-0.5, 0.5)] == 1
    assert sum(counts.values()) == 3
    # Nothing recorded, nothing swapped: the engine still prices at the base price.
    assert history.last("A", datetime(2100, 1, 1, tzinfo=UTC)) is None
    assert engine.guardrails.version == 0
    assert [d.final_price for d in engine.decide(["A", "B"], PublicContext(at=AT))] == [20.0, 50.0]


def test_preview_of_a_sealed_engine_needs_its_seal() -> None:
    engine = _engine(InMemoryPriceHistory())
    seal = object()
    engine.seal(seal)
    proposed = engine.guardrails.with_rule(Guardrail("global", ceiling=30.0))
    with pytest.raises(PermissionDenied):
        preview_guardrails(engine, object(), proposed, ["A"], AT)
    assert preview_guardrails(engine, seal, proposed, ["B"], AT).changed == 1


def test_preview_of_an_unknown_item_names_it() -> None:
    engine = _engine(InMemoryPriceHistory())
    with pytest.raises(NotFound, match="Z"):
        preview_guardrails(engine, object(), engine.guardrails, ["A", "Z"], AT)
