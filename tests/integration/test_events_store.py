"""serving.store.events_store and optouts_store on real SQLite (WAL) and, when
``FAIRSHELF_TEST_PG_URL`` is set, on a real PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from fairshelf.errors import FailedPrecondition, InvalidArgument
from pricing.fairness.ports import AuditSink
from serving.store.audit_store import AuditStore, audit_head, audit_log
from serving.store.db import Database
from serving.store.events_store import EVENTS, EventsStore, make_event, make_events
from serving.store.optouts_store import OPTOUTS, OptOutsStore
from training.data.canonical import EVENT_DTYPES
from training.data.validate import validate_events

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get("FAIRSHELF_TEST_PG_URL") else ["sqlite"]


@pytest.fixture(params=_backends())
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(str(tmp_path / "events.db"))
    else:
        database = Database(os.environ["FAIRSHELF_TEST_PG_URL"])
        for table in (EVENTS, OPTOUTS):
            table.drop(database.engine, checkfirst=True)
    yield database
    database.close()


def _raw(i: int, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": f"e{i}",
        "user_id": f"u{i % 3}",
        "item_id": f"i{i % 5}",
        "event_type": "purchase" if i % 4 == 0 else "view",
        "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
        "unit_price": 9.5 + i,
    }
    base.update(kw)
    return base


def test_append_is_idempotent_by_event_id(db: Database) -> None:
    store = EventsStore(db)
    first = store.append(make_events([_raw(i) for i in range(10)]))
    assert (first.accepted, first.duplicates) == (10, 0)
    again = store.append(make_events([_raw(i) for i in range(5, 15)]))
    assert (again.accepted, again.duplicates) == (5, 5)
    within = store.append(make_events([_raw(20), _raw(20, unit_price=1.0)]))
    assert (within.accepted, within.duplicates) == (1, 1)
    assert store.count() == 16


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "wal.db"))
    EventsStore(db)
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    db.close()


def test_read_back_as_canonical_events(db: Database) -> None:
    store = EventsStore(db)
    store.append(make_events([_raw(i, region="DE") for i in range(8)] + [_raw(99, quantity=3)]))
    frame = store.read_canonical()
    assert list(frame.columns) == list(EVENT_DTYPES)
    assert len(frame) == 9
    assert frame["timestamp"].is_monotonic_increasing
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert frame.loc[frame["event_id"] == "e99", "quantity"].item() == 3
    assert frame.loc[frame["event_id"] == "e3", "timestamp"].item() == pd.Timestamp(
        T0 + timedelta(minutes=3)
    )
    assert frame["region"].isna().sum() == 1
    # The retraining job's own validator accepts the rows unchanged.
    checked = validate_events(frame, file="event-store")
    assert len(checked) == 9
    window = store.read_canonical(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5))
    assert sorted(window["event_id"]) == ["e3", "e4", "e5"]


def test_recent_events_of_a_user_since_a_time(db: Database) -> None:
    store = EventsStore(db)
    store.append(make_events([_raw(i) for i in range(12)]))
    recent = store.recent_for_user("u0", since=T0 + timedelta(minutes=3))
    assert [e.event_id for e in recent] == ["e9", "e6"]
    assert all(e.timestamp.tzinfo is not None for e in recent)
    assert len(store.recent_for_user("u0", since=None)) == 4
    assert store.recent_for_user("nobody", since=None) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"user_id": ""}, "events[0].user_id"),
        ({"item_id": None}, "events[0].item_id"),
        ({"event_type": "like"}, "events[0].event_type"),
        ({"timestamp": "yesterday"}, "events[0].timestamp"),
        ({"timestamp": "2999-01-01T00:00:00+00:00"}, "events[0].timestamp"),
        ({"quantity": 0}, "events[0].quantity"),
        ({"unit_price": -1.0}, "events[0].unit_price"),
        ({"unit_price": None}, "events[0].unit_price"),
        ({"colour": "red"}, "events[0]"),
    ],
)
def test_invalid_events_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        make_event(_raw(0, **change), 0)
    assert err.value.field == field


def test_a_bad_event_writes_nothing_of_its_batch(db: Database) -> None:
    store = EventsStore(db)
    with pytest.raises(InvalidArgument) as err:
        store.append(make_events([_raw(0), _raw(1), _raw(2, event_type="nope")]))
    assert err.value.field == "events[2].event_type"
    assert store.count() == 0
    with pytest.raises(InvalidArgument):
        make_events([])


def test_missing_event_id_and_timestamp_get_server_values() -> None:
    ev = make_event(_raw(0, event_id="", timestamp=""))
    assert ev.event_id.startswith("srv-")
    assert abs((datetime.now(UTC) - ev.timestamp).total_seconds()) < 5


def test_personalization_choice_is_durable(db: Database, tmp_path: Path) -> None:
    store = OptOutsStore(db)
    assert store.get("u1").enabled and not store.is_opted_out("u1")
    store.set("u1", False)
    assert store.is_opted_out("u1")
    # A second handle on the same database (another replica) sees the choice.
    other = OptOutsStore(Database(db.url))
    assert other.is_opted_out("u1")
    store.set("u1", True)
    assert not other.is_opted_out("u1")


def test_a_choice_and_its_audit_record_commit_together(db: Database, tmp_path: Path) -> None:
    # A log of its own: the PostgreSQL database is shared with other test modules.
    for table in (audit_log, audit_head):
        table.drop(db.engine, checkfirst=True)
    try:
        _choice_and_record_commit_together(db, tmp_path)
    finally:
        for table in (audit_log, audit_head):
            table.drop(db.engine, checkfirst=True)


def _choice_and_record_commit_together(db: Database, tmp_path: Path) -> None:
    store, audit = OptOutsStore(db), AuditStore(db)

    def record(chain: AuditSink) -> None:
        chain.append("optout_changed", {"shopper_ref": "ref-1"})

    store.set("u1", False, audit=audit, on_change=record)
    store.set("u1", False, audit=audit, on_change=record)  # a repeat: nothing to record
    assert [r.kind for r in audit.records()] == ["optout_changed"]
    # The audit log can no longer be written (its head table is gone): SQLite reports it as
    # an operational error, retried until it gives up; PostgreSQL as a programming error.
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE audit_head")
    with pytest.raises((FailedPrecondition, ProgrammingError)):
        store.set("u1", True, audit=audit, on_change=record)
    assert store.is_opted_out("u1")  # not switched back on without its record
    elsewhere = AuditStore(Database(str(tmp_path / "elsewhere.db")))
    with pytest.raises(InvalidArgument, match="share one database"):
        store.set("u1", True, audit=elsewhere, on_change=record)


def test_export_events_command_feeds_the_trainer_reader(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fairshelf.cli.main import app
    from training.data.readers import read_events

    url = f"sqlite:///{tmp_path / 'log.db'}"
    db = Database(url)
    EventsStore(db).append(make_events([_raw(i) for i in range(6)]))
    db.close()
    out = tmp_path / "export" / "events.parquet"
    result = CliRunner().invoke(app, ["export-events", "--db", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "6 events" in result.output
    events = read_events(out)
    assert sorted(events["event_id"]) == [f"e{i}" for i in range(6)]
    later = tmp_path / "later.csv"
    since = (T0 + timedelta(minutes=3)).isoformat()
    result = CliRunner().invoke(
        app, ["export-events", "--db", url, "--out", str(later), "--since", since]
    )
    assert result.exit_code == 0 and len(read_events(later)) == 2
