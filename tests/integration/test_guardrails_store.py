"""Tests of serving.store.guardrails_store and price_history_store on real SQLite files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fairshelf.errors import FailedPrecondition, InvalidArgument, NotFound
from pricing.guardrail_rules import Guardrail
from serving.api_models import GuardrailValuesIn, PutGuardrailsIn
from serving.store.audit_store import AuditStore
from serving.store.db import Database
from serving.store.guardrails_store import GuardrailStore
from serving.store.price_history_store import PriceHistoryStore


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(str(tmp_path / "fairshelf.db"))


def test_set_read_change_and_roll_back(db: Database) -> None:
    store = GuardrailStore(db)
    assert store.current().version == 0
    c1 = store.put(Guardrail("global", floor=1.0, max_change_pct=0.2), author="ana", reason="init")
    c2 = store.put(
        Guardrail("category", "home", ceiling=80.0),
        author="bo",
        reason="cap home",
        expected_version=1,
    )
    c3 = store.put(Guardrail("global", floor=2.0), author="ana", reason="raise floor")
    assert (c1.version, c2.version, c3.version) == (1, 2, 3)
    assert {"scope": "global", "field": "floor", "old": 1.0, "new": 2.0} in c3.diff
    assert {"scope": "global", "field": "max_change_pct", "old": 0.2, "new": None} in c3.diff
    eff = store.effective("I1", "home/kitchen")
    assert (eff.floor, eff.ceiling, eff.version) == (2.0, 80.0, 3)
    back = store.rollback(1, author="ana", reason="undo")
    assert back.version == 4 and back.action == "rollback:1"
    assert store.current().rules == store.get_version(1).rules
    hist = store.history()
    assert [h.version for h in hist] == [4, 3, 2, 1]
    assert hist[1].author == "ana" and hist[1].reason == "raise floor"
    # A fresh handle on the same file sees the same state (durable).
    again = GuardrailStore(Database(db.url))
    assert again.current().version == 4 and again.get("global").floor == 1.0


def test_invalid_and_conflicting_changes_write_nothing(db: Database) -> None:
    store = GuardrailStore(db)
    store.put(Guardrail("global", ceiling=50.0), author="ana", reason="cap")
    with pytest.raises(FailedPrecondition) as err:
        store.put(Guardrail("category", "toys", floor=60.0), author="ana", reason="x")
    assert err.value.field == "floor"
    with pytest.raises(InvalidArgument) as err:
        store.put(Guardrail("global", floor=1.0), author="ana", reason="  ")
    assert err.value.field == "reason"
    with pytest.raises(FailedPrecondition):
        store.put(Guardrail("global", floor=1.0), author="a", reason="r", expected_version=0)
    with pytest.raises(NotFound):
        store.rollback(9, author="a", reason="r")
    with pytest.raises(NotFound):
        store.delete("item:zz", author="a", reason="r")
    assert store.current().version == 1 and len(store.history()) == 1


def test_serving_port_round_trip(db: Database) -> None:
    store = GuardrailStore(db)
    body = PutGuardrailsIn(
        values=GuardrailValuesIn(floor=3.0, price_ending="0.99", objective="margin"),
        reason="q3 plan",
    )
    out = store.put_out("category:home", body, actor="role:pricing")
    assert out.values.floor == 3.0 and out.values.price_ending == "0.99"
    assert out.updated_by == "role:pricing" and out.version == 1
    assert store.get_out("item:nothing").values.floor is None
    with pytest.raises(InvalidArgument) as err:
        store.put_out(
            "category:home",
            PutGuardrailsIn(values=GuardrailValuesIn(min_margin=-1), reason="r"),
            actor="x",
        )
    assert err.value.field == "min_margin"
    with pytest.raises(InvalidArgument) as err:
        store.get_out("shelf:3")
    assert err.value.field == "scope"


def test_price_history_survives_restart(db: Database) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    hist = PriceHistoryStore(db, now=now)
    hist.record("A", now - timedelta(days=5), 9.0)
    hist.record("A", now - timedelta(hours=30), 10.0)
    hist.record("A", now - timedelta(hours=2), 11.0)
    hist.record("A", now - timedelta(hours=2), 11.0)
    assert hist.count() == 3
    reopened = PriceHistoryStore(Database(db.url), now=now)
    window = reopened.in_force("A", now - timedelta(hours=24), now)
    assert list(window) == [10.0, 11.0]
    assert reopened.last("A", now) == 11.0
    assert reopened.last("B", now) is None


def test_a_change_and_its_audit_record_commit_together(db: Database) -> None:
    audit = AuditStore(db)
    store = GuardrailStore(db, audit=audit)
    store.put(Guardrail("global", floor=1.0), author="ana", reason="init")
    assert [r.payload["version"] for r in audit.records()] == [1]
    # The audit log refuses the next record: the change must not be in force either.
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END"
        )
    with pytest.raises(FailedPrecondition):
        store.put(Guardrail("global", floor=5.0), author="bo", reason="raise")
    assert store.current().version == 1
    assert store.current().get("global", "").floor == 1.0
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse")
    change = store.put(Guardrail("global", floor=5.0), author="bo", reason="raise")
    assert change.version == 2
    assert [r.payload["version"] for r in audit.records()] == [1, 2]


def test_the_audit_log_must_live_in_the_same_database(db: Database, tmp_path: Path) -> None:
    other = AuditStore(Database(str(tmp_path / "other.db")))
    with pytest.raises(InvalidArgument, match="share one database"):
        GuardrailStore(db, audit=other)
