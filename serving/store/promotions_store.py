"""Versioned promotions in the embedded store: who published or ended each one, when and why.

Promotions are public facts every quote in their window carries (:mod:`pricing.promotions`),
so, like guardrails, every change writes a new row holding the whole book as JSON (nothing is
overwritten) and, when an audit log is given, a ``promotion_changed`` record in the same
transaction: a promotion is in force exactly when the audit log says it was published.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from fairshelf.errors import FailedPrecondition, InvalidArgument
from pricing.fairness.change_audit import audit_promotion_change
from pricing.fairness.ports import AuditSink
from pricing.promotions import Promotion, PromotionBook
from serving.api_promotions import (
    EndPromotionIn,
    PromotionChangeOut,
    PromotionOut,
    PromotionsOut,
    PublishPromotionIn,
)
from serving.rfc3339 import parse_rfc3339
from serving.store.audit_store import AuditStore
from serving.store.db import METADATA, Database

PROMOTION_VERSIONS = Table(
    "promotion_versions",
    METADATA,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("created_us", BigInteger, nullable=False),
    Column("author", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("action", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("document", Text, nullable=False),
)


@dataclass(frozen=True)
class PromotionChange:
    """One version of the promotion book and the change that produced it."""

    version: int
    at: datetime
    author: str
    reason: str
    action: str
    promotion: Promotion


def _require_text(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{name} is required for a promotion change", field=name)
    return value.strip()


class PromotionStore:
    """Publish, end and read the versioned promotion book.

    Parameters
    ----------
    db:
        SQLite (WAL) or PostgreSQL handle; the table is created if missing.
    audit:
        The fairness audit log in the same database; when given, every change is recorded
        there (who, when, why, the promotion) in the transaction that makes it.
    clock:
        The time of a change (tests pass a fixed clock); ``datetime.now(UTC)`` by default.

    Raises
    ------
    InvalidArgument
        ``audit`` lives in another database.
    """

    def __init__(
        self,
        db: Database,
        audit: AuditStore | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if audit is not None:
            audit.require_database(db, "promotions")
        self.db = db
        self.audit = audit
        self.clock = clock or (lambda: datetime.now(UTC))
        db.create_tables(PROMOTION_VERSIONS)

    # -- reading ---------------------------------------------------------------------------
    def current(self) -> PromotionBook:
        """The book in force (version 0, empty, before any change)."""
        with self.db.engine.connect() as conn:
            return _current_on(conn)

    def history(self, limit: int = 100) -> list[PromotionChange]:
        """The latest ``limit`` changes, newest first."""
        stmt = (
            select(PROMOTION_VERSIONS)
            .order_by(PROMOTION_VERSIONS.c.version.desc())
            .limit(max(1, int(limit)))
        )
        with self.db.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        out = []
        for r in rows:
            book = PromotionBook.from_document(int(r["version"]), json.loads(r["document"]))
            out.append(
                PromotionChange(
                    version=int(r["version"]),
                    at=datetime.fromtimestamp(r["created_us"] / 1_000_000, UTC),
                    author=r["author"],
                    reason=r["reason"],
                    action=r["action"],
                    promotion=book.get(r["name"]),
                )
            )
        return out

    # -- changing --------------------------------------------------------------------------
    def publish(self, promotion: Promotion, *, author: str, reason: str) -> PromotionChange:
        """Publish ``promotion`` (rules of :meth:`PromotionBook.publish`).

        Raises
        ------
        InvalidArgument
            A reused name, a back-dated or empty window; empty author or reason.
        FailedPrecondition
            A concurrent change won.
        """
        return self._change(
            lambda book, now: (book.publish(promotion, now), promotion),
            "publish",
            promotion.name,
            author,
            reason,
        )

    def end(self, name: str, *, author: str, reason: str) -> PromotionChange:
        """End the promotion ``name`` now.

        Raises
        ------
        NotFound
            Never published.
        FailedPrecondition
            Already over, or a concurrent change won.
        """
        return self._change(lambda book, now: book.end(name, now), "end", name, author, reason)

    def _change(
        self,
        make: Callable[[PromotionBook, datetime], tuple[PromotionBook, Promotion]],
        action: str,
        name: str,
        author: str,
        reason: str,
    ) -> PromotionChange:
        author = _require_text("author", author)
        reason = _require_text("reason", reason)

        def apply(conn: Connection, audit: AuditSink | None) -> PromotionChange:
            now = self.clock()
            new, promotion = make(_current_on(conn), now)
            at_us = int(now.timestamp() * 1_000_000)
            try:
                conn.execute(
                    PROMOTION_VERSIONS.insert().values(
                        version=new.version,
                        created_us=at_us,
                        author=author,
                        reason=reason,
                        action=action,
                        name=name,
                        document=json.dumps(new.to_document(), sort_keys=True),
                    )
                )
            except IntegrityError:
                raise FailedPrecondition(
                    "a concurrent promotion change won; read again and retry", field="name"
                ) from None
            if audit is not None:
                audit_promotion_change(
                    audit,
                    actor=author,
                    reason=reason,
                    action=action,
                    version=new.version,
                    promotion=promotion.to_dict(),
                )
            return PromotionChange(new.version, now, author, reason, action, promotion)

        if self.audit is not None:
            return self.audit.atomically(apply)
        with self.db.engine.begin() as conn:
            return apply(conn, None)

    # -- the serving port ------------------------------------------------------------------
    def list_out(self, limit: int = 20) -> PromotionsOut:
        """Every promotion, those running now, the version and the latest changes."""
        book = self.current()
        now = self.clock()
        return PromotionsOut(
            promotions=[promotion_out(p, now) for p in reversed(book.promotions)],
            running=list(book.running_at(now)),
            version=book.version,
            history=[change_out(c, now) for c in self.history(limit)] if book.version else [],
        )

    def publish_out(self, name: str, body: PublishPromotionIn, actor: str) -> PromotionChangeOut:
        """Publish from the API model (start defaults to now; end is required)."""
        if not body.ends_at:
            raise InvalidArgument("ends_at is required: a promotion is time-boxed", field="ends_at")
        starts = parse_rfc3339(body.starts_at, "starts_at") if body.starts_at else self.clock()
        promotion = Promotion(
            name=name,
            title=body.title,
            description=body.description,
            starts_at=starts,
            ends_at=parse_rfc3339(body.ends_at, "ends_at"),
        )
        return change_out(self.publish(promotion, author=actor, reason=body.reason), self.clock())

    def end_out(self, name: str, body: EndPromotionIn, actor: str) -> PromotionChangeOut:
        """End a promotion now, from the API model."""
        return change_out(self.end(name, author=actor, reason=body.reason), self.clock())


def promotion_out(p: Promotion, now: datetime) -> PromotionOut:
    """The API form of one promotion."""
    return PromotionOut(**p.to_dict(), running=p.running(now))


def change_out(change: PromotionChange, now: datetime) -> PromotionChangeOut:
    """The API form of one change."""
    return PromotionChangeOut(
        version=change.version,
        at=change.at.isoformat(),
        author=change.author,
        reason=change.reason,
        action=change.action,
        promotion=promotion_out(change.promotion, now),
    )


def _current_on(conn: Connection) -> PromotionBook:
    stmt = select(PROMOTION_VERSIONS).order_by(PROMOTION_VERSIONS.c.version.desc()).limit(1)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        return PromotionBook()
    return PromotionBook.from_document(int(row["version"]), json.loads(row["document"]))
