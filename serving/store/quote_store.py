"""The quote log: every quote the fairness guard served, for ExplainQuote and the audits.

One row per quote. What the audits group and compare on is in real columns; the parts that are
the same for every quote of one fair decision (base price, adjustment, reason codes, policy,
inputs, guardrail) are kept as a small JSON ``detail`` that is serialised once per decision,
not once per quote, because the guard's budget is a few tens of µs per quoted item. No shopper
id is stored: only the coarse audit groups (tenure band, order-frequency band, device class).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import BigInteger, Column, Float, String, Table, Text, inspect, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError

from fairshelf.errors import NotFound
from fairshelf.interpreter_turns import Turns
from pricing.fairness.merkle import LEAF_COLUMNS, QuoteLeafEncoder, leaf_hash, quote_leaf
from pricing.fairness.programs import DiscountLine
from pricing.fairness.quote_batches import BATCH_KIND, batch_payload
from pricing.fairness.quotes import Quote
from pricing.fairness.shopper import ShopperGroup
from serving.store.audit_store import AuditStore, ChainMoved, audit_log
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
    # The seq of the ``quote_batch`` audit record that sealed the row (None: not sealed).
    Column("batch_seq", BigInteger, nullable=True),
    # Day-scoped keyed pseudonym of the shopper (the region-hopping audit); never an id.
    Column("shopper_ref", String(16), nullable=True),
)

# Dropped: an (item, epoch) index took 40% of the cost of logging a quote (one random B-tree
# insert per quoted item, on the writer thread that shares the interpreter with requests),
# and only the offline audits, which read the whole log anyway, walked it.
_RETIRED_INDEX = "ix_quote_log_item_epoch"

_COLUMNS = [c.name for c in quote_log.columns]
_LEAF = [quote_log.c[name] for name in LEAF_COLUMNS]
_CACHE_LIMIT = 20_000

_quote_id = itemgetter(0)

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
        shopper_ref=row.shopper_ref or "",
    )


class QuoteStore:
    """The quote log on a :class:`~serving.store.db.Database`; satisfies ``QuoteLog``.

    Parameters
    ----------
    db:
        The database; the table is created if missing.
    audit:
        The audit log of the same database. When given, every batch :meth:`add` stores is
        sealed in it (a ``quote_batch`` record with the batch's Merkle root, committed in the
        same transaction as the rows); see :mod:`pricing.fairness.quote_batches`.

    Raises
    ------
    InvalidArgument
        ``audit`` keeps its log in another database.
    """

    def __init__(self, db: Database, audit: AuditStore | None = None) -> None:
        self._db = db
        self._audit = audit
        if audit is not None:
            audit.require_database(db, "the quote log")
        db.create_tables(quote_log)
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_RETIRED_INDEX}")
        self._add_column("batch_seq", "BIGINT")
        self._add_column("shopper_ref", "VARCHAR(16)")
        marks = (
            ", ".join("?" for _ in _COLUMNS)
            if db.engine.dialect.paramstyle == "qmark"
            else ", ".join("%s" for _ in _COLUMNS)
        )
        # A plain DBAPI executemany: building SQLAlchemy parameters costs more than the insert.
        self._insert = f"INSERT INTO quote_log ({', '.join(_COLUMNS)}) VALUES ({marks})"
        self._details: dict[DetailKey, str] = {}
        self._lines: dict[tuple[DiscountLine, ...], str] = {(): "[]"}
        self._leaf = QuoteLeafEncoder()

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

    def _add_column(self, name: str, sql_type: str) -> None:
        # Logs made before the column existed lack it (batch_seq: before batches were sealed;
        # shopper_ref: before the day pseudonym); another process starting at the same time
        # may add it first.
        with self._db.engine.connect() as conn:
            names = {c["name"] for c in inspect(conn).get_columns("quote_log")}
        if name in names:
            return
        try:
            with self._db.engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE quote_log ADD COLUMN {name} {sql_type}")
        except DBAPIError:
            with self._db.engine.connect() as conn:
                if name not in {c["name"] for c in inspect(conn).get_columns("quote_log")}:
                    raise

    def add(self, quotes: Sequence[Quote]) -> None:
        """Store ``quotes`` in one transaction (all or nothing), sealed when auditing."""
        if not quotes:
            return
        if self._audit is not None:
            ordered = sorted(quotes, key=_quote_id)
            self._audit.atomically(lambda conn, chain: self._add_sealed(conn, chain, ordered))
            return
        # A generator, not a list, handed to the driver's executemany: each row is built just
        # before its insert. Built as a list first, a batch of 5,000 quotes was about 15 ms of
        # pure Python on the writer thread. The insert letting go of the interpreter lock for
        # each row does not hand it to a waiting request (the writer takes it back first), so
        # the writer also pauses between turns (:mod:`fairshelf.interpreter_turns`).
        rows = Turns().paced(self._row(q, None) for q in quotes)
        with self._db.engine.begin() as conn:
            self._insert_rows(conn, rows)

    def _row(self, q: Quote, batch_seq: int | None) -> tuple[Any, ...]:
        """The stored row of ``q``: ``_COLUMNS`` order, the leaf columns first."""
        return (
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
            batch_seq,
            q.shopper_ref or None,
        )

    def _insert_rows(self, conn: Connection, rows: Iterable[tuple[Any, ...]]) -> None:
        cursor = conn.connection.cursor()
        try:
            # PEP 249 says a sequence; sqlite3 and psycopg both iterate any iterable.
            cursor.executemany(self._insert, rows)  # type: ignore[arg-type]
        finally:
            cursor.close()

    def _add_sealed(self, conn: Connection, chain: Any, quotes: list[Quote]) -> None:
        """Insert ``quotes`` (in quote_id order) under the next audit seq, then seal them."""
        seq = chain.next_seq()
        hashes: list[bytes] = []
        keep = hashes.append
        encode = self._leaf.encode
        make = self._row
        turns = Turns()

        def rows() -> Iterator[tuple[Any, ...]]:
            # Each leaf is hashed as its row goes to the driver, so the batch is walked once,
            # in turns that leave the interpreter to requests between them.
            for q in quotes:
                turns.tick()
                row = make(q, seq)
                keep(leaf_hash(encode(row)))
                yield row

        self._insert_rows(conn, rows())
        payload = batch_payload(hashes, quotes[0].quote_id, quotes[-1].quote_id, turns.tick)
        chain.append(BATCH_KIND, payload, seq=seq)

    def seal_unbatched(self) -> int:
        """Seal rows logged before batches were sealed, once, as one batch.

        Only while the audit log holds no ``quote_batch`` record yet: after that, a row in no
        batch was put there behind the quote writer's back, and :func:`audit verify` must say
        so rather than have it sealed.

        Returns
        -------
        int
            Rows sealed (0 when there was nothing to do or sealing had begun already).
        """
        audit = self._audit
        if audit is None:
            return 0
        # Once any batch is sealed there is nothing to do: looked up first, as it stops at the
        # first hit, where finding no unsealed row would read the whole quote log.
        with self._db.engine.connect() as conn:
            if _sealing_began(conn) or (
                conn.execute(
                    select(quote_log.c.quote_id).where(quote_log.c.batch_seq.is_(None)).limit(1)
                ).first()
                is None
            ):
                return 0

        def seal(conn: Connection, chain: Any) -> int:
            seq = chain.next_seq()
            # Another process starting at the same time may have sealed them first (its
            # record then takes ``seq`` too, and one of the two transactions runs again).
            if _sealing_began(conn):
                return 0
            query = select(*_LEAF).where(quote_log.c.batch_seq.is_(None))
            found = sorted((tuple(r) for r in conn.execute(query)), key=_quote_id)
            if not found:
                return 0
            hashes = [leaf_hash(quote_leaf(r)) for r in found]
            moved = conn.execute(
                quote_log.update().where(quote_log.c.batch_seq.is_(None)).values(batch_seq=seq)
            ).rowcount
            if moved != len(found):  # a row came or went meanwhile: read them again
                raise ChainMoved(f"{moved} rows to seal, {len(found)} hashed")
            payload = batch_payload(hashes, found[0][0], found[-1][0])
            chain.append(BATCH_KIND, {**payload, "sealed_late": True}, seq=seq)
            return len(found)

        return audit.atomically(seal)

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

    def for_item(self, item_id: str, limit: int = 20) -> list[Quote]:
        """The latest ``limit`` quotes of one item, newest first. The log has no item index (see
        above), so this reads the whole table: a console page, not a serving path."""
        stmt = (
            select(quote_log)
            .where(quote_log.c.item_id == item_id)
            .order_by(quote_log.c.quoted_at.desc())
            .limit(max(1, int(limit)))
        )
        with self._db.engine.connect() as conn:
            return [_quote(r) for r in conn.execute(stmt)]

    def count(self) -> int:
        """Number of logged quotes."""
        with self._db.engine.connect() as conn:
            return len(conn.execute(select(quote_log.c.quote_id)).all())

    def batch_rows(self) -> Iterator[tuple[int | None, tuple[Any, ...]]]:
        """``(batch_seq, leaf columns)`` of every row, grouped by batch (streamed).

        Rows within a batch come in the database's order: sort them by ``quote_id`` in Python,
        as the writer did, since a PostgreSQL collation may order text otherwise.
        """
        query = select(quote_log.c.batch_seq, *_LEAF).order_by(quote_log.c.batch_seq)
        with self._db.engine.connect().execution_options(yield_per=5000) as conn:
            for row in conn.execute(query):
                yield (None if row[0] is None else int(row[0])), tuple(row[1:])

    def batch_of(self, quote_id: str) -> tuple[int, list[tuple[Any, ...]]] | None:
        """The batch seq of ``quote_id`` and the leaf columns of its batch's rows, in order.

        Returns
        -------
        tuple[int, list[tuple[Any, ...]]] | None
            None when the quote is stored in no batch.

        Raises
        ------
        NotFound
            When no quote has ``quote_id``.
        """
        with self._db.engine.connect() as conn:
            found = conn.execute(
                select(quote_log.c.batch_seq).where(quote_log.c.quote_id == quote_id)
            ).first()
            if found is None:
                raise NotFound(f"no quote with id {quote_id!r}", field="quote_id")
            if found.batch_seq is None:
                return None
            seq = int(found.batch_seq)
            sealed = conn.execute(
                select(audit_log.c.payload).where(audit_log.c.seq == seq)
            ).scalar()
            query = select(*_LEAF).where(quote_log.c.batch_seq == seq)
            if sealed is not None:
                # The sealed range narrows the search to the primary key's index.
                span = json.loads(sealed)
                query = query.where(
                    quote_log.c.quote_id.between(
                        str(span.get("first_quote_id", "")), str(span.get("last_quote_id", ""))
                    )
                )
            rows = [tuple(r) for r in conn.execute(query)]
        return seq, sorted(rows, key=_quote_id)


def _sealing_began(conn: Connection) -> bool:
    query = select(audit_log.c.seq).where(audit_log.c.kind == BATCH_KIND).limit(1)
    return conn.execute(query).first() is not None
