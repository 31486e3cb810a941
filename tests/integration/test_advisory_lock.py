"""serving.store.advisory_lock on a real PostgreSQL (skipped without one) and on SQLite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from serving.store.advisory_lock import AdvisoryLockBusy, advisory_lock, lock_key
from serving.store.db import Database

PG_URL = os.environ.get("FAIRSHELF_TEST_PG_URL")


def test_key_is_stable_and_signed_64_bit() -> None:
    assert lock_key("a") == lock_key("a") != lock_key("b")
    assert -(2**63) <= lock_key("fairshelf-retrain:/x") < 2**63


def test_sqlite_takes_no_lock(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with advisory_lock(db, "job") as taken, advisory_lock(db, "job") as again:
            assert taken is False and again is False
    finally:
        db.close()


@pytest.mark.skipif(not PG_URL, reason="FAIRSHELF_TEST_PG_URL is not set (.ci/run starts one)")
def test_postgres_lock_is_exclusive_across_sessions_and_released() -> None:
    assert PG_URL is not None
    one, two = Database(PG_URL), Database(PG_URL)
    try:
        with advisory_lock(one, "retrain-test") as taken:
            assert taken is True
            busy = pytest.raises(AdvisoryLockBusy, match="another job")
            with busy, advisory_lock(two, "retrain-test", wait_seconds=0.3):
                pass
            with advisory_lock(two, "another-name"):
                pass
        with advisory_lock(two, "retrain-test") as taken:
            assert taken is True
    finally:
        one.close()
        two.close()
