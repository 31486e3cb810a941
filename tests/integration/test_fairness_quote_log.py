"""The quote log behind the guard: group commit through a writer thread that never drops a quote."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fairness_fixtures import HonestPolicy, ctx_at, make_shop

from fairshelf.errors import NotFound, Unavailable
from pricing.fairness.quote_writer import BufferedQuoteLog
from pricing.fairness.quotes import Quote
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


def test_a_store_down_too_long_refuses_new_quotes_and_keeps_the_taken_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shop = make_shop(tmp_path / "u.db", HonestPolicy())
    db = Database(str(tmp_path / "log.db"))
    store = QuoteStore(db)
    buffered = BufferedQuoteLog(store, max_pending=2, linger=0.0, max_wait=0.2)
    try:
        taken = shop.service.quote(["sku-001", "sku-002"], ctx_at(), Shopper("a", 10, 1))
        refused = shop.service.quote(["sku-003"], ctx_at(), Shopper("b", 10, 1))
        quote_log.drop(db.engine)  # the store is gone: every write fails
        with caplog.at_level(logging.CRITICAL, logger="pricing.fairness.quote_writer"):
            buffered.add(taken)  # room for two: queued
            started = time.monotonic()
            with pytest.raises(Unavailable, match="quote log is not storing quotes"):
                buffered.add(refused)  # no room while the store is down
            assert 0.2 <= time.monotonic() - started < 5.0
            assert buffered.get(taken[0].quote_id) == taken[0]  # explainable from memory
        quote_log.create(db.engine)  # the store is back: nothing taken was lost
        buffered.flush()
        assert store.count() == 2
        with pytest.raises(NotFound):  # the refused quote was never taken, so never served
            buffered.get(refused[0].quote_id)
        buffered.add(refused)  # and quotes are taken again
        buffered.flush()
        assert store.count() == 3
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


class _SlowLog:
    """A quote log that records each transaction and takes a while to store it."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.stored: dict[str, Quote] = {}

    def add(self, quotes: Sequence[Quote]) -> None:
        time.sleep(0.002)
        self.batches.append([q.quote_id for q in quotes])
        self.stored.update((q.quote_id, q) for q in quotes)

    def get(self, quote_id: str) -> Quote:
        return self.stored[quote_id]

    def iter_quotes(self) -> Iterator[Quote]:
        return iter(list(self.stored.values()))


def test_backlog_is_stored_in_order_in_bounded_transactions(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "b.db", HonestPolicy())
    inner = _SlowLog()
    buffered = BufferedQuoteLog(inner, max_pending=12, max_batch=5, linger=0.0)
    try:
        served: list[Quote] = []
        for n in range(40):
            quotes = shop.service.quote(
                ["sku-001", "sku-002", "sku-003"], ctx_at(), Shopper(f"s{n}")
            )
            buffered.add(quotes)  # waits while 12 quotes are not stored yet
            assert all(buffered.get(q.quote_id) == q for q in quotes)  # explainable at once
            served.extend(quotes)
        buffered.flush()
        assert [i for batch in inner.batches for i in batch] == [q.quote_id for q in served]
        assert max(len(batch) for batch in inner.batches) <= 5
        assert all(buffered.get(q.quote_id) == q for q in served)
    finally:
        buffered.close()
        shop.close()
