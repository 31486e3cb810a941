"""The quote log: every quote the fairness guard served, for ExplainQuote and the audits.

Columns the audits group and compare on are real columns; the full quote is kept as JSON in
``body`` so an explanation shows exactly what was served. No shopper id is stored: only the
coarse audit groups (tenure band, order-frequency band, device class).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from sqlalchemy import BigInteger, Column, Float, Index, String, Table, Text, insert, select

from pricing.errors import NotFound
from pricing.fairness.quotes import Quote
from serving.store.db import METADATA, Database

quote_log = Table(
    "quote_log",
    METADATA,
    Column("quote_id", String(40), primary_key=True),
    Column("item_id", String(128), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("context_key", Text, nullable=False),
    Column("quoted_at", String(40), nullable=False),
    Column("list_price", Float, nullable=False),
    Column("final_price", Float, nullable=False),
    Column("policy", String(128), nullable=False),
    Column("guardrail_version", String(64), nullable=False),
    Column("tenure", String(16), nullable=False),
    Column("frequency", String(16), nullable=False),
    Column("device", String(32), nullable=False),
    Column("guard_status", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_quote_log_item_epoch", "item_id", "epoch"),
)


class QuoteStore:
    """The quote log on a :class:`~serving.store.db.Database`; satisfies ``QuoteLog``.

    Parameters
    ----------
    db:
        The database; the table is created if missing.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        METADATA.create_all(db.engine, tables=[quote_log])

    def add(self, quotes: Sequence[Quote]) -> None:
        """Store ``quotes`` in one transaction (all or nothing)."""
        if not quotes:
            return
        rows = [
            {
                "quote_id": q.quote_id,
                "item_id": q.item_id,
                "epoch": q.epoch,
                "context_key": q.context_key,
                "quoted_at": q.quoted_at,
                "list_price": q.list_price,
                "final_price": q.final_price,
                "policy": f"{q.policy_name}@{q.policy_version}",
                "guardrail_version": q.guardrail_version,
                "tenure": q.group.tenure,
                "frequency": q.group.frequency,
                "device": q.group.device,
                "guard_status": q.guard_status,
                "body": json.dumps(q.to_json(), separators=(",", ":")),
            }
            for q in quotes
        ]
        with self._db.engine.begin() as conn:
            conn.execute(insert(quote_log), rows)

    def get(self, quote_id: str) -> Quote:
        """The quote with ``quote_id``.

        Raises
        ------
        NotFound
            When there is none.
        """
        with self._db.engine.connect() as conn:
            body = conn.execute(
                select(quote_log.c.body).where(quote_log.c.quote_id == quote_id)
            ).scalar()
        if body is None:
            raise NotFound(f"no quote with id {quote_id!r}", field="quote_id")
        return Quote.from_json(json.loads(body))

    def iter_quotes(self) -> Iterator[Quote]:
        """Every quote, ordered by item, epoch and public context (streamed)."""
        query = select(quote_log.c.body).order_by(
            quote_log.c.item_id, quote_log.c.epoch, quote_log.c.context_key, quote_log.c.quoted_at
        )
        with self._db.engine.connect().execution_options(yield_per=2000) as conn:
            for body in conn.execute(query).scalars():
                yield Quote.from_json(json.loads(body))

    def count(self) -> int:
        """Number of logged quotes."""
        with self._db.engine.connect() as conn:
            return len(conn.execute(select(quote_log.c.quote_id)).all())
