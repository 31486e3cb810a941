"""Served prices per item and epoch in the embedded store, for the 24 h change limit.

Reads come from an in-process mirror (the quote hot path must not wait on the database);
every recorded price is written through to the database, and the mirror is loaded from it at
start-up, so a restarted server still honours the change limit against prices served before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, Float, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from pricing.price_history import InMemoryPriceHistory
from serving.store.db import METADATA, Database

PRICE_HISTORY = Table(
    "price_history",
    METADATA,
    Column("item_id", String(256), primary_key=True),
    Column("start_s", BigInteger, primary_key=True),
    Column("price", Float, primary_key=True),
)


class PriceHistoryStore:
    """A :class:`pricing.price_history.PriceHistory` backed by the database.

    Parameters
    ----------
    db:
        SQLite (WAL) or PostgreSQL handle; the table is created if missing.
    preload:
        How far back to load into the mirror at start-up (must cover the 24 h window).
    now:
        The time the preload window ends (defaults to the current time).
    """

    def __init__(
        self, db: Database, *, preload: timedelta = timedelta(hours=48), now: datetime | None = None
    ) -> None:
        self.db = db
        PRICE_HISTORY.create(db.engine, checkfirst=True)
        self._mirror = InMemoryPriceHistory()
        since = int(((now or datetime.now(UTC)) - preload).timestamp())
        with db.engine.connect() as conn:
            # Also the last price before the window per item: it was still in force in it.
            rows = conn.execute(
                select(PRICE_HISTORY).order_by(PRICE_HISTORY.c.item_id, PRICE_HISTORY.c.start_s)
            ).all()
        last_before: dict[str, list[tuple[int, float]]] = {}
        for item_id, start_s, price in rows:
            if start_s < since:
                last_before[item_id] = [
                    (s, p) for s, p in last_before.get(item_id, []) if s == start_s
                ] + [(start_s, price)]
            else:
                self._mirror.record(item_id, datetime.fromtimestamp(start_s, UTC), price)
        for item_id, entries in last_before.items():
            for start_s, price in entries:
                self._mirror.record(item_id, datetime.fromtimestamp(start_s, UTC), price)
        dialect: Any = postgresql if db.engine.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert(PRICE_HISTORY).on_conflict_do_nothing()

    def record(self, item_id: str, start: datetime, price: float) -> None:
        """Write through: database first, so the mirror never holds an unsaved price."""
        with self.db.engine.begin() as conn:
            conn.execute(
                self._insert,
                {"item_id": item_id, "start_s": int(start.timestamp()), "price": price},
            )
        self._mirror.record(item_id, start, price)

    def record_many(self, entries: Iterable[tuple[str, datetime, float]]) -> None:
        """Write several prices in one transaction, then mirror them (all or nothing)."""
        batch = list(entries)
        if not batch:
            return
        rows = [
            {"item_id": item_id, "start_s": int(start.timestamp()), "price": price}
            for item_id, start, price in batch
        ]
        with self.db.engine.begin() as conn:
            conn.execute(self._insert, rows)
        for item_id, start, price in batch:
            self._mirror.record(item_id, start, price)

    def in_force(self, item_id: str, since: datetime, until: datetime) -> Sequence[float]:
        """See :meth:`pricing.price_history.PriceHistory.in_force`."""
        return self._mirror.in_force(item_id, since, until)

    def last(self, item_id: str, until: datetime) -> float | None:
        """See :meth:`pricing.price_history.PriceHistory.last`."""
        return self._mirror.last(item_id, until)

    def count(self) -> int:
        """Rows stored in the database (for tests and reports)."""
        with self.db.engine.connect() as conn:
            return len(conn.execute(select(PRICE_HISTORY.c.item_id)).all())
