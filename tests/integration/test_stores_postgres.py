"""Every store on a real PostgreSQL: guardrails, price history, audit log, quote log.

``.ci/run`` starts a throwaway PostgreSQL on loopback and sets ``FAIRSHELF_TEST_PG_URL``; the
same stores run on SQLite files in the other integration tests. Without that variable (a
developer machine with no PostgreSQL) the module is skipped and says why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pricing.fairness.report import verify_audit_log
from pricing.fairness.shopper import Shopper
from pricing.guardrail_rules import Guardrail
from pricing.promotions import Promotion
from serving.store import (
    audit_store,
    guardrails_store,
    price_history_store,
    promotions_store,
    quote_store,
)
from serving.store.db import METADATA, Database
from tests.integration.fairness_fixtures import ITEM_IDS, HonestPolicy, ctx_at, make_shop

PG_URL = os.environ.get("FAIRSHELF_TEST_PG_URL")
pytestmark = pytest.mark.skipif(
    not PG_URL, reason="FAIRSHELF_TEST_PG_URL is not set (.ci/run starts a PostgreSQL)"
)
_STORES = (
    audit_store,
    guardrails_store,
    price_history_store,
    promotions_store,
    quote_store,
)  # tables on METADATA


@pytest.fixture
def pg() -> Iterator[Database]:
    assert PG_URL is not None
    db = Database(PG_URL)
    METADATA.drop_all(db.engine, checkfirst=True)
    yield db
    METADATA.drop_all(db.engine, checkfirst=True)
    db.close()


def test_guardrails_versions_and_rollback(pg: Database) -> None:
    audit = audit_store.AuditStore(pg)
    store = guardrails_store.GuardrailStore(pg, audit=audit)
    store.put(Guardrail("global", floor=1.0), author="ana", reason="init")
    store.put(Guardrail("category", "home", ceiling=50.0), author="bo", reason="cap")
    assert store.effective("I1", "home/kitchen").ceiling == 50.0
    back = store.rollback(1, author="ana", reason="undo")
    assert back.version == 3
    fresh = guardrails_store.GuardrailStore(Database(pg.url))
    assert fresh.current().rules == fresh.get_version(1).rules
    assert [h.author for h in fresh.history()] == ["ana", "bo", "ana"]
    # Each change was committed with its audit record, in one transaction.
    assert [r.payload["version"] for r in audit.records()] == [1, 2, 3]
    assert verify_audit_log(audit).ok


def test_price_history_survives_a_new_handle(pg: Database) -> None:
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    store = price_history_store.PriceHistoryStore(pg, now=now)
    store.record("A", now - timedelta(hours=2), 10.0)
    store.record("A", now - timedelta(hours=1), 11.0)
    again = price_history_store.PriceHistoryStore(Database(pg.url), now=now)
    assert again.last("A", now) == 11.0


def test_audit_log_is_append_only_and_verifies(pg: Database) -> None:
    store = audit_store.AuditStore(pg)
    for i in range(5):
        store.append("g2_violation", {"item_id": f"sku-{i}", "fair_price": 10.0 + i})
    report = verify_audit_log(store)
    assert report.ok and report.records == 5
    for statement in ("UPDATE audit_log SET kind = 'x' WHERE seq = 1", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), pg.engine.begin() as conn:
            conn.execute(text(statement))
    assert verify_audit_log(audit_store.AuditStore(Database(pg.url))).ok


def test_quotes_are_logged_and_explained(pg: Database) -> None:
    shop = make_shop(pg.url, HonestPolicy())  # type: ignore[arg-type]  # a URL is a path too
    try:
        ctx = ctx_at()
        new = shop.service.quote(ITEM_IDS[:3], ctx, Shopper("u-new", tenure_days=1, orders=0))
        loyal = shop.service.quote(ITEM_IDS[:3], ctx, Shopper("u-old", tenure_days=900, orders=40))
        shop.service.flush()
        assert [q.list_price for q in new] == [q.list_price for q in loyal]
        assert shop.quotes.count() == 6
        stored = shop.quotes.get(loyal[0].quote_id)
        assert stored.final_price == loyal[0].final_price
        explanation = shop.service.explain(loyal[0].quote_id).to_json()
        assert explanation["quote"]["quote_id"] == loyal[0].quote_id
        assert explanation["policy"] == "honest@1"
    finally:
        shop.close()


def test_promotions_are_versioned_and_audited(pg: Database) -> None:
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    audit = audit_store.AuditStore(pg)
    store = promotions_store.PromotionStore(pg, audit=audit, clock=lambda: t0)
    store.publish(
        Promotion("spring", "Spring sale", "10% off", t0, t0 + timedelta(days=2)),
        author="ana",
        reason="season",
    )
    store.end("spring", author="bo", reason="sold out")
    fresh = promotions_store.PromotionStore(Database(pg.url), clock=lambda: t0)
    assert fresh.current().version == 2 and fresh.current().running_at(t0) == ()
    assert [r.payload["action"] for r in audit.records()] == ["publish", "end"]
    assert verify_audit_log(audit).ok


def test_quotes_keep_the_day_pseudonym(pg: Database) -> None:
    shop = make_shop(pg.url, HonestPolicy())  # type: ignore[arg-type]  # a URL is a path too
    try:
        shop.service.quote(ITEM_IDS[:2], ctx_at(), Shopper("u-1", tenure_days=3))
        refs = {q.shopper_ref for q in shop.quotes.iter_quotes()}
        assert len(refs) == 1 and len(refs.pop()) == 16
    finally:
        shop.close()
