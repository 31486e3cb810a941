"""The quote log: every quote the fairness guard served, for ExplainQuote and the audits.

One row per quote. What the audits group and compare on is in real columns; the parts that are
the same for every quote of one fair decision (base price, adjustment, reason codes, policy,
inputs, guardrail) are kept as a small JSON ``detail`` that is serialised once per decision,
not once per quote, because the guard's budget is a few tens of µs per quoted item. No shopper
id is stored: only the coarse audit groups (tenure band, order-frequency band, device class).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Float, String, Table, Text, select
from sqlalchemy.engine import Row

from fairshelf.errors import NotFound
from pricing.fairness.programs import DiscountLine
from pricing.fairness.quotes import Quote
from pricing.fairness.shopper import ShopperGroup
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
    Column("tenure", String(16), nullable=False),
    Column("frequency", String(16), nullable=False),
    Column("device", String(32), nullable=False),
    Column("guard_status", String(16), nullable=False),
    Column("blocked_price", Float, nullable=True),
    Column("lines", Text, nullable=False),
    Column("detail", Text, nullable=False),
)

# Dropped: an (item, epoch) index took 40% of the cost of logging a quote (one random B-tree
# insert per quoted item, on the writer thread that shares the interpreter with requests),
# and only the offline audits, which read the whole log anyway, walked it.
_RETIRED_INDEX = "ix_quote_log_item_epoch"

_COLUMNS = [c.name for c in quote_log.columns]
_CACHE_LIMIT = 20_000

DetailKey = tuple[tuple[str, ...], tuple[str, ...], float, float, str, str, str, str]


def _detail_key(q: Quote) -> DetailKey:
    return (
        q.reason_codes,
        q.inputs,
        q.base_price,
        q.adjustment,
        q.policy_name,
        q.policy_version,
        q.guardrail_scope,
        q.guardrail_version,
    )


def _quote(row: Row[Any]) -> Quote:
    detail = json.loads(row.detail)
    return Quote(
        quote_id=row.quote_id,
        item_id=row.item_id,
        epoch=int(row.epoch),
        context_key=row.context_key,
        quoted_at=row.quoted_at,
        list_price=float(row.list_price),
        final_price=float(row.final_price),
        base_price=float(detail["base_price"]),
        adjustment=float(detail["adjustment"]),
        reason_codes=tuple(detail["reason_codes"]),
        policy_name=detail["policy_name"],
        policy_version=detail["policy_version"],
        inputs=tuple(detail["inputs"]),
        guardrail_scope=detail["guardrail_scope"],
        guardrail_version=detail["guardrail_version"],
        discount_lines=tuple(DiscountLine.from_json(d) for d in json.loads(row.lines)),
        group=ShopperGroup(row.tenure, row.frequency, row.device),
        guard_status=row.guard_status,
        blocked_price=None if row.blocked_price is None else float(row.blocked_price),
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
        db.create_tables(quote_log)
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_RETIRED_INDEX}")
        marks = (
            ", ".join("?" for _ in _COLUMNS)
            if db.engine.dialect.paramstyle == "qmark"
            else ", ".join("%s" for _ in _COLUMNS)
        )
        # A plain DBAPI executemany: building SQLAlchemy parameters costs more than the insert.
        self._insert = f"INSERT INTO quote_log ({', '.join(_COLUMNS)}) VALUES ({marks})"
        self._details: dict[DetailKey, str] = {}
        self._lines: dict[tuple[DiscountLine, ...], str] = {(): "[]"}

    def _detail(self, q: Quote) -> str:
        key = _detail_key(q)
        text = self._details.get(key)
        if text is None:
            if len(self._details) > _CACHE_LIMIT:
                self._details.clear()
            text = self._details[key] = json.dumps(
                {
                    "base_price": q.base_price,
                    "adjustment": q.adjustment,
                    "reason_codes": list(q.reason_codes),
                    "policy_name": q.policy_name,
                    "policy_version": q.policy_version,
                    "inputs": list(q.inputs),
                    "guardrail_scope": q.guardrail_scope,
                    "guardrail_version": q.guardrail_version,
                },
                separators=(",", ":"),
            )
        return text

    def _lines_text(self, lines: tuple[DiscountLine, ...]) -> str:
        text = self._lines.get(lines)
        if text is None:
            if len(self._lines) > _CACHE_LIMIT:
                self._lines = {(): "[]"}
            text = self._lines[lines] = json.dumps(
                [line.to_json() for line in lines], separators=(",", ":"), ensure_ascii=False
            )
        return text

    def add(self, quotes: Sequence[Quote]) -> None:
        """Store ``quotes`` in one transaction (all or nothing)."""
        if not quotes:
            return
        # A generator, not a list, handed to the driver's executemany: each row is built just
        # before its insert, and every insert releases the interpreter lock. Built as a list
        # first, a batch of 5,000 quotes was about 15 ms of pure Python on the writer thread,
        # and a request arriving meanwhile waited for the interpreter's 5 ms switch interval.
        rows = (
            (
                q.quote_id,
                q.item_id,
                q.epoch,
                q.context_key,
                q.quoted_at,
                q.list_price,
                q.final_price,
                q.group.tenure,
                q.group.frequency,
                q.group.device,
                q.guard_status,
                q.blocked_price,
                self._lines_text(q.discount_lines),
                self._detail(q),
            )
            for q in quotes
        )
        with self._db.engine.begin() as conn:
            cursor = conn.connection.cursor()
            try:
                # PEP 249 says a sequence; sqlite3 and psycopg both iterate any iterable.
                cursor.executemany(self._insert, rows)  # type: ignore[arg-type]
            finally:
                cursor.close()

    def get(self, quote_id: str) -> Quote:
        """The quote with ``quote_id``.

        Raises
        ------
        NotFound
            When there is none.
        """
        with self._db.engine.connect() as conn:
            row = conn.execute(select(quote_log).where(quote_log.c.quote_id == quote_id)).first()
        if row is None:
            raise NotFound(f"no quote with id {quote_id!r}", field="quote_id")
        return _quote(row)

    def iter_quotes(self) -> Iterator[Quote]:
        """Every quote in the order served (quote ids are time-ordered; streamed, no sort)."""
        query = select(quote_log).order_by(quote_log.c.quote_id)
        with self._db.engine.connect().execution_options(yield_per=2000) as conn:
            for row in conn.execute(query):
                yield _quote(row)

    def count(self) -> int:
        """Number of logged quotes."""
        with self._db.engine.connect() as conn:
            return len(conn.execute(select(quote_log.c.quote_id)).all())
