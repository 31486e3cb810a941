"""The engine over the database stores: guardrails from the store, the 24 h rule across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from fairshelf.errors import NotFound
from pricing.catalog import PricingCatalog
from pricing.context import PublicContext
from pricing.engine import PricingEngine
from pricing.guardrail_rules import Guardrail
from pricing.policies.registry import load_policy
from serving.store.db import Database
from serving.store.guardrails_store import GuardrailStore
from serving.store.price_history_store import PriceHistoryStore

T0 = datetime(2026, 7, 1, 8, tzinfo=UTC)
CATALOG = PricingCatalog.from_frames(
    pd.DataFrame(
        {
            "item_id": ["A", "B"],
            "category": ["home", "toys"],
            "base_price": [100.0, 10.0],
            "unit_cost": [40.0, 4.0],
        }
    ),
    pd.DataFrame({"item_id": ["A", "B"], "elasticity": [-3.0, -0.5]}),
)


def test_change_limit_holds_across_a_restart(tmp_path: Path) -> None:
    url = str(tmp_path / "p.db")
    guards = GuardrailStore(Database(url))
    guards.put(
        Guardrail("global", max_change_pct=0.1, price_ending=0.99), author="ana", reason="launch"
    )
    history = PriceHistoryStore(Database(url), now=T0)
    static = PricingEngine(CATALOG, guards.current(), load_policy("static"), history=history)
    first = static.decide(["A", "B"], PublicContext(at=T0))
    assert [d.final_price for d in first] == [99.99, 9.99]
    assert history.count() == 2
    # A new process: the elasticity-optimal policy wants A far lower and B far higher, but the
    # prices served before the restart still bind for 24 h.
    later = T0 + timedelta(hours=5)
    reopened = PriceHistoryStore(Database(url), now=later)
    engine = PricingEngine(
        CATALOG, guards.current(), load_policy("elasticity_optimal"), history=reopened
    )
    a, b = engine.decide(["A", "B"], PublicContext(at=later))
    assert 99.99 * 0.9 <= a.final_price < 99.99 and "CHANGE_LIMITED" in a.reason_codes
    # B may rise 10 % at most (to 10.98): no .99 price above 9.99 fits, so it stays.
    assert b.final_price == 9.99 and "CHANGE_LIMITED" in b.reason_codes
    assert a.guardrail_version == 1


def test_unknown_item_leaves_nothing_half_done(tmp_path: Path) -> None:
    history = PriceHistoryStore(Database(str(tmp_path / "p.db")), now=T0)
    engine = PricingEngine(
        CATALOG,
        GuardrailStore(Database(str(tmp_path / "p.db"))).current(),
        load_policy("static"),
        history=history,
    )
    with pytest.raises(NotFound):
        engine.decide(["A", "nope", "B"], PublicContext(at=T0))
    assert history.count() == 0
    assert [d.item_id for d in engine.decide(["B", "A", "B"], PublicContext(at=T0))] == [
        "B",
        "A",
        "B",
    ]
    assert history.count() == 2
