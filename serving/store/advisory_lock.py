"""A PostgreSQL session-level advisory lock, for jobs that must not run twice at once.

Retraining jobs on several machines share the database but not the bundles directory's file
lock; the advisory lock is held on one open connection and the server drops it when that
connection ends, so a job killed half way never leaves it taken. On SQLite (one machine) the
file lock is enough and this lock is a no-op.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from fairshelf.errors import FailedPrecondition
from serving.store.db import Database

POLL_SECONDS = 0.2


class AdvisoryLockBusy(FailedPrecondition):
    """Another session holds the advisory lock."""


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (PostgreSQL's advisory-lock key space)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def advisory_lock(db: Database, name: str, wait_seconds: float = 0.0) -> Iterator[bool]:
    """Hold the advisory lock ``name`` on PostgreSQL for the ``with`` block.

    Yields ``True`` when a lock was taken, ``False`` on other databases (nothing to take).

    Raises
    ------
    AdvisoryLockBusy
        If another session still holds it after ``wait_seconds``.
    """
    if db.engine.dialect.name != "postgresql":
        yield False
        return
    key = lock_key(name)
    deadline = time.monotonic() + wait_seconds
    with db.engine.connect() as conn:
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one():
            if time.monotonic() >= deadline:
                raise AdvisoryLockBusy(f"another job holds the database lock {name!r}")
            time.sleep(POLL_SECONDS)
        conn.commit()
        try:
            yield True
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
