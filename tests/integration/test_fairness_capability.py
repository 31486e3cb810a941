"""The guard's engine answers the guard only, and warming the epoch changes no price.

Covers :mod:`pricing.fairness.capability` (a sealed engine refuses every caller without the
guard's capability) and :meth:`FairQuoteService.warm` (fair prices pinned ahead of requests,
in the clean room, identical to the prices requests would have pinned).
"""

from __future__ import annotations

import copy
import pickle
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from fairness_fixtures import (
    AT,
    ITEM_IDS,
    ITEMS,
    ContextVarSnoopPolicy,
    HonestPolicy,
    built_service,
    ctx_at,
    make_shop,
)

from fairshelf.errors import FailedPrecondition, PermissionDenied
from pricing.catalog import PricingCatalog
from pricing.context import ItemState, PublicContext
from pricing.engine import PricingEngine
from pricing.fairness.capability import GuardCapability
from pricing.fairness.guard import FairQuoteService
from pricing.fairness.quotes import GUARD_BLOCKED, GUARD_OK
from pricing.fairness.shopper import Shopper
from pricing.guardrails import GuardrailSet
from pricing.policy import Proposal
from serving.store.audit_store import AuditStore
from serving.store.db import Database
from serving.store.quote_store import QuoteStore

NEWCOMER = Shopper("new-1", tenure_days=2, orders=0, device="web")
LOYAL = Shopper("loyal-1", tenure_days=900, orders=40, device="ios", member=True)


def _engine(policy: HonestPolicy | None = None) -> PricingEngine:
    return PricingEngine(
        PricingCatalog({s.item_id: s for s in ITEMS}), GuardrailSet(), policy or HonestPolicy()
    )


class _ThreadRecordingPolicy(HonestPolicy):
    """Honest, and notes the thread of every proposal (clean room or request thread)."""

    name: ClassVar[str] = "thread_recording"
    threads: ClassVar[list[str]] = []

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        type(self).threads.append(threading.current_thread().name)
        return super().propose(item, ctx, objective)


# -- capability ------------------------------------------------------------------------------


def test_the_guard_engine_refuses_callers_without_the_capability(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "sealed.db", HonestPolicy(), ())
    try:
        assert shop.engine.sealed
        impostor = object()
        with pytest.raises(PermissionDenied, match="fairness guard"):
            shop.engine.decide(["sku-001"], ctx_at())
        with pytest.raises(PermissionDenied):
            shop.engine.decide(["sku-001"], ctx_at(), capability=impostor)
        with pytest.raises(PermissionDenied):
            shop.engine.warm(ctx_at())
        with pytest.raises(PermissionDenied):
            shop.engine.policy_for(0)
        # The guard itself still quotes through the same engine.
        [q] = shop.service.quote(["sku-001"], ctx_at(), LOYAL)
        assert q.guard_status == GUARD_OK
    finally:
        shop.close()


def test_the_built_service_seals_the_engine_it_builds(tmp_path: Path) -> None:
    with built_service(tmp_path / "built.db", warm_each_epoch=False) as service:
        engine = service._engine  # what code reaching into the service would find
        with pytest.raises(PermissionDenied):
            engine.decide(["sku-000"], PublicContext(at=AT))
        [q] = service.quote(["sku-000"], PublicContext(at=AT), NEWCOMER)
        assert q.list_price == ITEMS[0].base_price


def test_the_capability_cannot_be_made_copied_or_pickled() -> None:
    with pytest.raises(TypeError):
        GuardCapability()
    from pricing.fairness import capability

    token = capability._GUARD_CAPABILITY
    for attempt in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError):
            attempt(token)


def test_an_engine_that_priced_outside_the_guard_cannot_be_put_behind_it(
    tmp_path: Path,
) -> None:
    engine = _engine()
    engine.decide(["sku-001"], ctx_at())  # offline use: no capability needed
    db = Database(str(tmp_path / "late.db"))
    try:
        with pytest.raises(FailedPrecondition, match="outside the fairness guard"):
            FairQuoteService(engine, quote_log=QuoteStore(db), audit=AuditStore(db))
    finally:
        db.close()


def test_one_engine_cannot_serve_two_guards(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "first.db", HonestPolicy(), ())
    try:
        with pytest.raises(FailedPrecondition, match="already sealed"):
            FairQuoteService(shop.engine, quote_log=shop.quotes, audit=shop.audit)
    finally:
        shop.close()


def test_an_offline_engine_decides_without_a_capability() -> None:
    engine = _engine()
    assert not engine.sealed
    [d] = engine.decide(["sku-002"], ctx_at())
    assert d.final_price == ITEMS[2].base_price
    assert engine.policy_for(d.epoch).name == "honest"


# -- warming the epoch -----------------------------------------------------------------------


def test_warmed_epoch_serves_from_pins_without_the_clean_room(tmp_path: Path) -> None:
    _ThreadRecordingPolicy.threads.clear()
    shop = make_shop(tmp_path / "warm.db", _ThreadRecordingPolicy(), ())
    try:
        assert shop.service.warm(ctx_at()) == len(ITEM_IDS)
        assert shop.service.warm(ctx_at()) == 0  # already pinned
        warmed = list(_ThreadRecordingPolicy.threads)
        assert len(warmed) == len(ITEM_IDS)
        assert all(t.startswith("fairshelf-clean-room") for t in warmed)
        _ThreadRecordingPolicy.threads.clear()
        quotes = shop.service.quote(list(ITEM_IDS), ctx_at(AT.replace(minute=40)), LOYAL)
        # Only the shopper-scoped re-run proposed, on the requesting thread.
        assert _ThreadRecordingPolicy.threads == [threading.current_thread().name] * len(ITEM_IDS)
        assert all(q.guard_status == GUARD_OK for q in quotes)
    finally:
        shop.close()


def test_warming_changes_no_price(tmp_path: Path) -> None:
    cold = make_shop(tmp_path / "cold.db", HonestPolicy(), ())
    warm = make_shop(tmp_path / "warm.db", HonestPolicy(), ())
    try:
        warm.service.warm(ctx_at(AT.replace(minute=0)))
        for shopper in (NEWCOMER, LOYAL):
            a = cold.service.quote(list(ITEM_IDS), ctx_at(), shopper)
            b = warm.service.quote(list(ITEM_IDS), ctx_at(), shopper)
            assert [q.list_price for q in a] == [q.list_price for q in b]
            assert [q.epoch for q in a] == [q.epoch for q in b]
    finally:
        cold.close()
        warm.close()


def test_a_warmed_epoch_still_catches_a_shopper_dependent_policy(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "warm_snoop.db", ContextVarSnoopPolicy(), ())
    try:
        shop.service.warm(ctx_at())
        fair = {q.item_id: q.list_price for q in shop.service.quote(list(ITEM_IDS), ctx_at())}
        quotes = shop.service.quote(list(ITEM_IDS), ctx_at(), LOYAL)
        assert all(q.guard_status == GUARD_BLOCKED for q in quotes)
        assert {q.item_id: q.list_price for q in quotes} == fair
    finally:
        shop.close()
