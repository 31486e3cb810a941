"""Shoppers' personalization choices, stored durably (PIPL art. 24, algorithm provisions art. 17).

A shopper with no row has personalization on. Every recommend call reads this table, so a
switch-off is honoured by the very next call on any replica that shares the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pricing.fairness.ports import AuditSink
from serving.store.audit_store import AuditStore
from serving.store.db import METADATA, Database
from serving.store.events_store import from_us, to_us
from serving.store.hot_reads import HotReader

_ENABLED_SQL = "SELECT enabled FROM personalization WHERE user_id = ?"

OPTOUTS = Table(
    "personalization",
    METADATA,
    Column("user_id", String(256), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)


@dataclass(frozen=True)
class PersonalizationChoice:
    """A shopper's current choice."""

    user_id: str
    enabled: bool
    updated_at: datetime | None


class OptOutsStore:
    """Read and write personalization choices.

    Parameters
    ----------
    db:
        SQLite (WAL) or PostgreSQL handle; the table is created if missing.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        db.create_tables(OPTOUTS)
        self._reader = HotReader(db)

    def set(
        self,
        user_id: str,
        enabled: bool,
        *,
        audit: AuditStore | None = None,
        on_change: Callable[[AuditSink], object] | None = None,
    ) -> PersonalizationChoice:
        """Store ``enabled`` for ``user_id`` (upsert) and return the stored choice.

        Parameters
        ----------
        user_id, enabled:
            The shopper and their choice.
        audit, on_change:
            The audit log (same database) and what to record in it: when the stored choice
            changes, ``on_change`` appends to the chain it is given inside the transaction of
            the write, so the choice and its record commit together or not at all.

        Raises
        ------
        InvalidArgument
            If ``audit`` lives in another database.
        """
        now = datetime.now(UTC)
        dialect: Any = postgresql if self.db.engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(OPTOUTS).values(
            user_id=user_id, enabled=enabled, updated_us=to_us(now)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id"],
            set_={"enabled": stmt.excluded.enabled, "updated_us": stmt.excluded.updated_us},
        )

        def apply(conn: Connection, chain: AuditSink | None) -> PersonalizationChoice:
            row = conn.execute(select(OPTOUTS.c.enabled).where(OPTOUTS.c.user_id == user_id))
            stored = row.scalar()
            conn.execute(stmt)
            # No row means personalization on: a first "on" changes nothing.
            if (
                chain is not None
                and on_change is not None
                and (stored is None or bool(stored)) != enabled
            ):
                on_change(chain)
            return PersonalizationChoice(user_id, enabled, now)

        if audit is not None and on_change is not None:
            audit.require_database(self.db, "personalization choices")
            return audit.atomically(apply)
        with self.db.engine.begin() as conn:
            return apply(conn, None)

    def get(self, user_id: str) -> PersonalizationChoice:
        """The stored choice (personalization on, ``updated_at=None`` when never set)."""
        stmt = select(OPTOUTS).where(OPTOUTS.c.user_id == user_id)
        with self.db.engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        if row is None:
            return PersonalizationChoice(user_id, True, None)
        return PersonalizationChoice(user_id, bool(row["enabled"]), from_us(row["updated_us"]))

    def is_opted_out(self, user_id: str) -> bool:
        """Whether the shopper switched personalization off (the per-request lookup)."""
        rows = self._reader.rows(
            "SELECT enabled FROM personalization WHERE user_id = ?", (user_id,)
        )
        return bool(rows) and not bool(rows[0][0])
