"""The quote log behind the guard: group commit through a writer thread that never drops a quote."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fairness_fixtures import HonestPolicy, ctx_at, make_shop

from pricing.fairness.quote_writer import BufferedQuoteLog
from pricing.fairness.shopper import Shopper
from serving.store.db import Database
from serving.store.quote_store import QuoteStore, quote_log


def test_quotes_survive_a_store_outage_and_stay_explainable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shop = make_shop(tmp_path / "q.db", HonestPolicy())
    db = Database(str(tmp_path / "log.db"))
    store = QuoteStore(db)
    buffered = BufferedQuoteLog(store, linger=0.0)
    try:
        quotes = shop.service.quote(["sku-001", "sku-002"], ctx_at(), Shopper("s", 10, 1))
        quote_log.drop(db.engine)  # the store is gone: every write fails
        with caplog.at_level(logging.ERROR, logger="pricing.fairness.quote_writer"):
            buffered.add(quotes)
            assert buffered.get(quotes[0].quote_id) == quotes[0]  # served from memory
            buffered.flush(timeout=1.0)  # cannot complete while the store is down
            assert any("retrying" in r.message for r in caplog.records)
        quote_log.create(db.engine)  # the store is back
        buffered.flush()
        assert store.count() == 2
        assert store.get(quotes[1].quote_id) == quotes[1]
        assert {q.quote_id for q in buffered.iter_quotes()} == {q.quote_id for q in quotes}
    finally:
        buffered.close()
        db.close()
        shop.close()


def test_many_single_item_requests_are_all_stored_under_unique_ids(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "g.db", HonestPolicy(), buffer_quotes=True)
    try:
        ids = []
        for n in range(200):
            [q] = shop.service.quote(["sku-003"], ctx_at(), Shopper(f"s{n}", n, n % 7))
            ids.append(q.quote_id)
        assert len(set(ids)) == 200
        shop.service.flush()
        assert shop.quotes.count() == 200
        assert {q.quote_id for q in shop.quotes.iter_quotes()} == set(ids)
    finally:
        shop.close()
