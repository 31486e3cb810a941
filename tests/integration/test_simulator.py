"""Tests of pricing.simulator on the tiny synthetic store."""

from __future__ import annotations

import pytest

from pricing.guardrail_rules import Guardrail
from pricing.guardrails import GuardrailSet
from pricing.simulator import SimulationConfig, simulate, truth_from_store
from training.data.synthetic import SyntheticStore

GUARDS = GuardrailSet().with_rule(
    Guardrail("global", min_ratio=0.8, max_ratio=1.25, max_change_pct=0.1, price_ending=0.99)
)


def test_learner_with_true_start_matches_the_oracle(tiny_store: SyntheticStore) -> None:
    truth = truth_from_store(tiny_store.items, tiny_store.truth_items, tiny_store.events)
    res = simulate(truth, GUARDS, SimulationConfig(weeks=1, start_error=0.0, seed=2))
    by = res.weekly.set_index("arm")["revenue"].to_dict()
    assert by["learner"] == by["oracle"]
    assert res.quotes == 2 * 7 * len(truth)


def test_learner_from_wrong_start_and_audit(tiny_store: SyntheticStore) -> None:
    truth = truth_from_store(tiny_store.items, tiny_store.truth_items, tiny_store.events)
    res = simulate(truth, GUARDS, SimulationConfig(weeks=2, start_error=0.3, seed=5))
    assert len(res.weekly) == 4
    assert 0.8 < res.revenue_ratio(last_weeks=1) <= 1.05
    for audit in res.audits.values():
        assert audit.checked == 14 * len(truth)
        assert audit.total_violations == 0, audit.examples
    start = res.elasticities[res.elasticities["week"] == 0]
    err = (start["estimate"] / start["true_elasticity"] - 1).abs()
    assert err.to_numpy() == pytest.approx(0.3)
