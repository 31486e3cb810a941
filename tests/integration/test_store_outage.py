"""serving.store.outage: a database that fails answers UNAVAILABLE (never INTERNAL), and
Recommend's per-request reads fall back to "non-personalized" while it fails.

The failure is real: the SQLite file's tables are dropped under the stores, so every read
raises the driver's OperationalError exactly as a lost database does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fairshelf.errors import Unavailable
from serving.errors import status_for
from serving.store.db import Database
from serving.store.events_store import EventsStore, make_events
from serving.store.optouts_store import OptOutsStore
from serving.store.outage import PersonalReads, database_errors_unavailable


@pytest.fixture
def stores(tmp_path: Path) -> tuple[Database, OptOutsStore, EventsStore]:
    db = Database(f"sqlite:///{tmp_path / 'outage.db'}")
    return db, OptOutsStore(db), EventsStore(db)


def _break(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE personalization")
        conn.exec_driver_sql("DROP TABLE events")


def test_reads_honour_the_opt_out_then_fall_back_while_the_database_fails(
    stores: tuple[Database, OptOutsStore, EventsStore],
) -> None:
    db, optouts, events = stores
    optouts.set("shy", False)
    events.append(
        make_events([{"user_id": "bo", "item_id": "i1", "event_type": "view", "unit_price": 2.0}])
    )
    reads = PersonalReads(optouts, events, cooldown=0.2)
    assert reads.read("shy", None) == (True, [])
    opted_out, recent = reads.read("bo", None)
    assert opted_out is False and [e.item_id for e in recent] == ["i1"]
    _break(db)
    # Nobody is personalized while the opt-outs cannot be read, so no opt-out is broken.
    assert reads.read("bo", None) == (True, [])
    # Back again: during the cooldown the reads are still skipped, after it they resume.
    db.create_all()
    assert reads.read("bo", None) == (True, [])
    time.sleep(0.25)
    assert reads.read("bo", None) == (False, [])
    db.close()


def test_a_failing_write_is_unavailable_not_internal(
    stores: tuple[Database, OptOutsStore, EventsStore],
) -> None:
    db, optouts, events = stores
    _break(db)
    with pytest.raises(Unavailable) as err, database_errors_unavailable():
        events.append(
            make_events(
                [{"user_id": "bo", "item_id": "i1", "event_type": "view", "unit_price": 2.0}]
            )
        )
    assert status_for(err.value).http_status == 503
    assert status_for(err.value).code_name == "UNAVAILABLE"
    with pytest.raises(Unavailable), database_errors_unavailable():
        optouts.is_opted_out("bo")  # the raw-driver hot read
    # Errors that are not an outage pass through untouched.
    with pytest.raises(ZeroDivisionError), database_errors_unavailable():
        _ = 1 / 0
    db.close()
