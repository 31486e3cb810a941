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

_BLOCK = 16


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
        db.create_tables(PRICE_HISTORY)
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
        mark = "?" if db.engine.dialect.paramstyle == "qmark" else "%s"
        row = f"({mark}, {mark}, {mark})"
        # The same statement as plain SQL for the batch write: building SQLAlchemy parameters
        # per row cost more than the insert itself (the epoch warm-up writes every item). Rows
        # go _BLOCK at a time in one statement (one statement step per block, not per row);
        # the rest one by one. Two fixed texts, so the driver's prepared statements are reused.
        head = "INSERT INTO price_history (item_id, start_s, price) VALUES "
        self._insert_row = f"{head}{row} ON CONFLICT DO NOTHING"
        self._insert_block = f"{head}{', '.join([row] * _BLOCK)} ON CONFLICT DO NOTHING"

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
        # A batch usually shares one epoch start: convert each distinct start once.
        seconds: dict[datetime, int] = {}
        rows: list[tuple[str, int, float]] = []
        for item_id, start, price in batch:
            start_s = seconds.get(start)
            if start_s is None:
                start_s = seconds[start] = int(start.timestamp())
            rows.append((item_id, start_s, price))
        whole = len(rows) - len(rows) % _BLOCK
        blocks = [
            tuple(v for r in rows[i : i + _BLOCK] for v in r) for i in range(0, whole, _BLOCK)
        ]
        # The DBAPI connection itself: SQLAlchemy's connection and transaction wrappers cost
        # about as much per batch of a few dozen rows as the rows' inserts.
        conn = self.db.engine.raw_connection()
        try:
            cur = conn.cursor()
            try:
                if blocks:
                    cur.executemany(self._insert_block, blocks)
                if whole < len(rows):
                    cur.executemany(self._insert_row, rows[whole:])
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                cur.close()
        finally:
            conn.close()
        self._mirror.record_many(batch)

    def in_force(self, item_id: str, since: datetime, until: datetime) -> Sequence[float]:
        """See :meth:`pricing.price_history.PriceHistory.in_force`."""
        return self._mirror.in_force(item_id, since, until)

    def last_and_in_force(
        self, item_id: str, since_s: float, last_until_s: float, until_s: float
    ) -> tuple[float | None, Sequence[float]]:
        """See :meth:`pricing.price_history.InMemoryPriceHistory.last_and_in_force`."""
        return self._mirror.last_and_in_force(item_id, since_s, last_until_s, until_s)

    def last(self, item_id: str, until: datetime) -> float | None:
        """See :meth:`pricing.price_history.PriceHistory.last`."""
        return self._mirror.last(item_id, until)

    def series(self, item_id: str, since: datetime) -> list[tuple[datetime, float]]:
        """The prices served for ``item_id`` per epoch start since ``since``, oldest first
        (read from the database: the mirror keeps only the change-limit window)."""
        stmt = (
            select(PRICE_HISTORY.c.start_s, PRICE_HISTORY.c.price)
            .where(PRICE_HISTORY.c.item_id == item_id)
            .where(PRICE_HISTORY.c.start_s >= int(since.timestamp()))
            .order_by(PRICE_HISTORY.c.start_s)
        )
        with self.db.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [(datetime.fromtimestamp(s, UTC), float(p)) for s, p in rows]

    def count(self) -> int:
        """Rows stored in the database (for tests and reports)."""
        with self.db.engine.connect() as conn:
            return len(conn.execute(select(PRICE_HISTORY.c.item_id)).all())
