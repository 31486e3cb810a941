"""serving.store.promotions_store on a real SQLite file: every change versioned, audited in
its own transaction, and read back the same by a fresh handle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fairshelf.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from pricing.fairness.report import verify_audit_log
from pricing.promotions import Promotion
from serving.api_promotions import EndPromotionIn, PublishPromotionIn
from serving.store.audit_store import AuditStore
from serving.store.db import Database
from serving.store.promotions_store import PromotionStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the store."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_publish_end_history_and_audit(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "p.db"))
    clock = Clock()
    audit = AuditStore(db)
    store = PromotionStore(db, audit=audit, clock=clock)
    assert store.current().version == 0 and store.list_out().promotions == []
    spring = Promotion("spring", "Spring sale", "10% off", T0, T0 + timedelta(days=3))
    store.publish(spring, author="role:pricing", reason="season")
    out = store.publish_out(
        "night",
        PublishPromotionIn(
            title="Night owl",
            description="5% off after ten",
            starts_at=(T0 + timedelta(hours=13)).isoformat(),
            ends_at=(T0 + timedelta(hours=15)).isoformat(),
            reason="test night",
        ),
        actor="role:pricing",
    )
    assert out.version == 2 and out.promotion.running is False
    clock.now = T0 + timedelta(hours=14)
    listed = store.list_out()
    assert listed.running == ["night", "spring"] and listed.version == 2
    ended = store.end_out("spring", EndPromotionIn(reason="sold out"), actor="role:admin")
    assert ended.promotion.ends_at == clock.now.isoformat() and ended.action == "end"
    # A fresh handle reads the same book and history.
    again = PromotionStore(Database(db.url))
    assert again.current().running_at(clock.now) == ("night",)
    assert [(c.version, c.action, c.promotion.name, c.author) for c in again.history()] == [
        (3, "end", "spring", "role:admin"),
        (2, "publish", "night", "role:pricing"),
        (1, "publish", "spring", "role:pricing"),
    ]
    records = [r for r in audit.records() if r.kind == "promotion_changed"]
    assert [(r.payload["action"], r.payload["reason"]) for r in records] == [
        ("publish", "season"),
        ("publish", "test night"),
        ("end", "sold out"),
    ]
    assert records[2].payload["promotion"]["ends_at"] == clock.now.isoformat()
    assert verify_audit_log(audit).ok
    db.close()


def test_refused_changes_leave_no_version_and_no_record(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "p.db"))
    clock = Clock()
    audit = AuditStore(db)
    store = PromotionStore(db, audit=audit, clock=clock)
    body = PublishPromotionIn(title="t", description="d", ends_at="2026-03-05T00:00:00Z")
    with pytest.raises(InvalidArgument, match="reason is required"):
        store.publish_out("spring", body, actor="role:pricing")
    with pytest.raises(InvalidArgument, match="ends_at is required"):
        store.publish_out("spring", PublishPromotionIn(title="t", description="d", reason="r"), "x")
    with pytest.raises(InvalidArgument, match="before it is published"):
        store.publish_out(
            "spring",
            body.model_copy(update={"starts_at": "2026-03-01T00:00:00Z", "reason": "r"}),
            "x",
        )
    with pytest.raises(InvalidArgument, match="starts_at is not an RFC 3339 timestamp"):
        store.publish_out(
            "spring", body.model_copy(update={"starts_at": "soon", "reason": "r"}), "x"
        )
    with pytest.raises(NotFound):
        store.end_out("spring", EndPromotionIn(reason="r"), "x")
    store.publish_out("spring", body.model_copy(update={"reason": "r"}), "x")
    with pytest.raises(AlreadyExists, match="never reused"):
        store.publish_out("spring", body.model_copy(update={"reason": "r"}), "x")
    clock.now = datetime(2026, 3, 6, tzinfo=UTC)
    with pytest.raises(FailedPrecondition, match="already ended"):
        store.end_out("spring", EndPromotionIn(reason="r"), "x")
    assert store.current().version == 1
    assert [r.kind for r in audit.records()] == ["promotion_changed"]
    db.close()


def test_store_refuses_an_audit_log_in_another_database(tmp_path: Path) -> None:
    other = AuditStore(Database(str(tmp_path / "other.db")))
    with pytest.raises(InvalidArgument, match="share one database"):
        PromotionStore(Database(str(tmp_path / "p.db")), audit=other)
