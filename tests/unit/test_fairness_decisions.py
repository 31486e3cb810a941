"""Tests of pricing.fairness.decisions and the warm-up's turn sizing in fair_prices."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from pricing.engine import PriceDecision
from pricing.fairness.decisions import read_decision, read_decisions
from pricing.fairness.fair_prices import (
    WARM_CHUNK_MAX,
    WARM_CHUNK_MIN,
    WARM_TURN_SECONDS,
    _next_chunk_size,
)

START = datetime(2026, 3, 1, 10, tzinfo=UTC)


def _engine_decision(item_id: str, codes: tuple[str, ...]) -> PriceDecision:
    return PriceDecision(
        item_id=item_id,
        final_price=9.99,
        base_price=10.0,
        adjustment=-0.01,
        reason_codes=codes,
        policy="static",
        policy_version="1",
        inputs=("base_price", "elasticity"),
        guardrail_scope="category:toys",
        guardrail_version=3,
        epoch=7,
        epoch_start=START,
        epoch_label="2026-03-01T10:00Z",
        proposed_price=10.0,
        decision_id="00ff",
    )


def test_batch_read_equals_one_by_one_read_with_config() -> None:
    config = (object(), object())
    duck = SimpleNamespace(
        item_id="D",
        final_price=5,
        base_price=5,
        adjustment=0,
        reason_codes=["X"],
        policy=SimpleNamespace(name="p", version=2),
        guardrail=SimpleNamespace(scope="global", version=1),
        price_epoch=7,
        declared_inputs=["stock", "base_price"],
    )
    batch = [
        _engine_decision("A", ("STATIC",)),
        _engine_decision("B", ("STATIC", "CAPPED_AT_UPPER_BOUND")),
        duck,
        _engine_decision("C", ("STATIC",)),
    ]
    got = read_decisions(batch, config)
    want = [dataclasses.replace(read_decision(d), config=config) for d in batch]
    assert got == want
    for g, w in zip(got, want, strict=True):
        assert vars(g) == vars(w) and g.config is config
        with pytest.raises(dataclasses.FrozenInstanceError):
            g.final_price = 1.0  # type: ignore[misc]


def test_warm_turns_aim_at_the_time_budget_within_bounds() -> None:
    # A turn that took its budget keeps its size; faster turns grow at most 2x, slower turns
    # shrink at most 2x, and the size stays within [MIN, MAX].
    assert _next_chunk_size(32, 32, WARM_TURN_SECONDS) == 32
    assert _next_chunk_size(32, 32, WARM_TURN_SECONDS / 10) == 64
    assert _next_chunk_size(32, 32, WARM_TURN_SECONDS * 10) == 16
    assert _next_chunk_size(WARM_CHUNK_MAX, WARM_CHUNK_MAX, 1e-9) == WARM_CHUNK_MAX
    assert _next_chunk_size(WARM_CHUNK_MIN, WARM_CHUNK_MIN, 1.0) == WARM_CHUNK_MIN
    # A partial turn (items already pinned, the last turn) says nothing about the rate.
    assert _next_chunk_size(32, 5, 1.0) == 32
