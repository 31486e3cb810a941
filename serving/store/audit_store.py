"""The audit log table (rule G5): append-only, hash-chained, with a separately kept head.

Rows are only ever inserted. On SQLite and PostgreSQL a trigger refuses UPDATE and DELETE, so
even a bug in fairshelf cannot rewrite history; someone with direct write access to the
database can drop the trigger, which is why every record is also hash-chained to the previous
one and ``fairshelf audit verify`` walks the chain. The head (``seq``, ``hash``) is also kept
in ``audit_head`` so that a cut-off tail is noticed; publish exported heads elsewhere for
protection against someone who rewrites both tables.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Integer,
    String,
    Table,
    Text,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError, OperationalError

from fairshelf.errors import FailedPrecondition, InvalidArgument, Unavailable
from pricing.fairness.audit_chain import Anchor, AuditRecord, next_record
from pricing.fairness.ports import AuditSink
from serving.store.db import METADATA, Database

T = TypeVar("T")

audit_log = Table(
    "audit_log",
    METADATA,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", String(40), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
)

audit_head = Table(
    "audit_head",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

for _op in ("UPDATE", "DELETE"):
    event.listen(
        audit_log,
        "after_create",
        DDL(
            f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{_op.lower()} BEFORE {_op} ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        ).execute_if(dialect="sqlite"),
    )
event.listen(
    audit_log,
    "after_create",
    DDL(
        "CREATE OR REPLACE FUNCTION fairshelf_audit_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$ LANGUAGE plpgsql"
    ).execute_if(dialect="postgresql"),
)
event.listen(
    audit_log,
    "after_create",
    DDL(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION fairshelf_audit_append_only()"
    ).execute_if(dialect="postgresql"),
)

_APPEND_ATTEMPTS = 20


class ChainMoved(Exception):
    """Another writer appended after a transaction reserved its sequence number.

    Raised inside :meth:`AuditStore.atomically`, which then runs the transaction again.
    """


def _payload_text(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        seq=int(row.seq),
        ts=str(row.ts),
        kind=str(row.kind),
        payload=json.loads(row.payload),
        prev_hash=str(row.prev_hash),
        hash=str(row.hash),
    )


class AuditStore:
    """The audit log on a :class:`~serving.store.db.Database`; satisfies ``AuditSink``.

    Parameters
    ----------
    db:
        The database; tables are created if missing.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        # Appends from this process take turns; other processes are handled by the retry.
        self._lock = threading.Lock()
        db.create_tables(audit_log, audit_head)

    @property
    def db(self) -> Database:
        """The database the log lives in."""
        return self._db

    def require_database(self, db: Database, what: str) -> None:
        """Refuse to audit ``what`` kept in another database: the two could not commit in one
        transaction (:meth:`atomically`).

        Raises
        ------
        InvalidArgument
            If ``db`` is not this log's database.
        """
        if db.url != self._db.url:
            raise InvalidArgument(
                f"{what} and the audit log must share one database", field="audit"
            )

    def append(self, kind: str, payload: Mapping[str, Any]) -> AuditRecord:
        """Append one event, chained to the current head, in one transaction.

        Parameters
        ----------
        kind:
            Event kind, e.g. ``"g2_violation"``, ``"optout_changed"``.
        payload:
            JSON-serialisable details.

        Returns
        -------
        AuditRecord
            The stored record.

        Raises
        ------
        FailedPrecondition
            When concurrent writers kept winning the race for the next sequence number.
        """
        return self.atomically(lambda _conn, chain: chain.append(kind, payload))

    def atomically(self, work: Callable[[Connection, AuditSink], T]) -> T:
        """Run ``work(conn, chain)`` in one transaction of this log's database.

        What ``work`` writes through ``conn`` and appends through ``chain`` commits together or
        not at all, so a change is never in force without its audit record, nor recorded
        without being in force (the failure the store and the chain written one after the
        other would allow). When another process appended first (the next sequence number is
        taken, or the database was locked), the whole of ``work`` is run again on fresh reads.

        Raises
        ------
        FailedPrecondition
            When concurrent writers kept winning the race for the next sequence number.
        Unavailable
            When the database could not be reached (or stayed locked) on every attempt.
        """
        last: Exception | None = None
        with self._lock:
            for attempt in range(_APPEND_ATTEMPTS):
                try:
                    with self._db.engine.begin() as conn:
                        return work(conn, _ChainOn(self, conn))
                except (IntegrityError, OperationalError, ChainMoved) as exc:
                    # Another process took this seq (or held the lock): back off, retry.
                    last = exc
                    time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
        if isinstance(last, OperationalError) and (not self._db.is_sqlite or "locked" in str(last)):
            # A lost race is an IntegrityError; this is the database down or locked throughout
            # (SQLite also reports a missing table this way: that stays a failed precondition).
            raise Unavailable("the database is unavailable; retry later") from last
        # The database's own last error rides along, for when it was not a race after all.
        raise FailedPrecondition(
            "could not append to the audit log: too many concurrent writers"
        ) from last

    def _append_on(
        self, conn: Connection, kind: str, payload: Mapping[str, Any], seq: int | None = None
    ) -> AuditRecord:
        row = conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)).first()
        record = next_record(_record(row) if row is not None else None, kind, payload)
        if seq is not None and record.seq != seq:
            raise ChainMoved(f"seq {seq} was reserved but the next free one is {record.seq}")
        conn.execute(
            insert(audit_log).values(
                seq=record.seq,
                ts=record.ts,
                kind=record.kind,
                payload=_payload_text(record.payload),
                prev_hash=record.prev_hash,
                hash=record.hash,
            )
        )
        moved = conn.execute(
            update(audit_head).where(audit_head.c.id == 1).values(seq=record.seq, hash=record.hash)
        ).rowcount
        if not moved:
            conn.execute(insert(audit_head).values(id=1, seq=record.seq, hash=record.hash))
        return record

    def records(self) -> Iterator[AuditRecord]:
        """Every record in sequence order."""
        with self._db.engine.connect() as conn:
            for row in conn.execute(select(audit_log).order_by(audit_log.c.seq)):
                yield _record(row)

    def records_between(self, after: int, upto: int | None = None) -> list[AuditRecord]:
        """The records with ``after < seq <= upto`` (``upto`` None: to the end), in order."""
        query = select(audit_log).where(audit_log.c.seq > after)
        if upto is not None:
            query = query.where(audit_log.c.seq <= upto)
        with self._db.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query.order_by(audit_log.c.seq))]

    def anchor(self) -> Anchor | None:
        """The head checkpoint kept in ``audit_head``, or None for an empty log."""
        with self._db.engine.connect() as conn:
            row = conn.execute(select(audit_head).where(audit_head.c.id == 1)).first()
        return None if row is None else Anchor(int(row.seq), str(row.hash))

    def count(self, kind: str | None = None) -> int:
        """Number of records, optionally of one kind."""
        query = select(audit_log.c.seq)
        if kind is not None:
            query = query.where(audit_log.c.kind == kind)
        with self._db.engine.connect() as conn:
            return len(conn.execute(query).all())


class _ChainOn:
    """The audit log seen from inside one transaction: appends commit or roll back with it."""

    def __init__(self, store: AuditStore, conn: Connection) -> None:
        self._store = store
        self._conn = conn

    def append(
        self, kind: str, payload: Mapping[str, Any], *, seq: int | None = None
    ) -> AuditRecord:
        """Append one event on the transaction's connection.

        ``seq``, when given, is the number :meth:`next_seq` reserved: rows written under it
        earlier in the transaction name this record, so if it is no longer free the whole
        transaction is run again (:class:`ChainMoved`).
        """
        return self._store._append_on(self._conn, kind, payload, seq)

    def next_seq(self) -> int:
        """The sequence number the next append of this transaction will get, if no other
        writer appends first."""
        last = self._conn.execute(select(func.max(audit_log.c.seq))).scalar()
        return 1 if last is None else int(last) + 1

    def records(self) -> Iterator[AuditRecord]:
        """Every committed record in sequence order."""
        return self._store.records()

    def anchor(self) -> Anchor | None:
        """The committed head checkpoint."""
        return self._store.anchor()
