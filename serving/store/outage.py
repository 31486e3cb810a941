"""What the server does while its database is down: refuse writes as UNAVAILABLE, keep
recommending without breaking an opt-out.

A lost connection, a refused one, a database shutting down or starting up and a full pool all
reach the stores as SQLAlchemy errors, which are not part of the project's error tree: unmapped,
they would answer INTERNAL / 500 as if the server had a bug. :func:`database_errors_unavailable`
turns them into :class:`~fairshelf.errors.Unavailable` (UNAVAILABLE / 503, "retry later") for
every operation. An integrity error is not an outage and is left alone.

Recommend cannot know a shopper's opt-out without the database, so it does not guess:
:class:`PersonalReads` answers "treat as opted out" (a non-personalized list, marked
``personalized: false`` in the response) while the database fails, which honours every
opt-out by construction. After a failure the reads are skipped for ``cooldown`` seconds, so
that calls served on the event loop do not each wait on a dead connection.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import psycopg
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from fairshelf.errors import Unavailable
from serving.logging import get_logger
from serving.store.events_store import Event, EventsStore
from serving.store.optouts_store import OptOutsStore

log = get_logger("fairshelf.store")

# What a database outage looks like (both backends): SQLAlchemy's OperationalError (connection
# refused or lost, "the database system is shutting down", SQLite "database is locked"),
# InterfaceError (a closed connection) and the pool's own timeout; and the same errors raw from
# the drivers, where a store uses the DBAPI connection itself (hot reads, bulk price history).
DATABASE_DOWN: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
)

UNAVAILABLE_MESSAGE = "the database is unavailable; retry later"


@contextmanager
def database_errors_unavailable() -> Iterator[None]:
    """Re-raise a database outage inside the block as :class:`Unavailable`."""
    try:
        yield
    except DATABASE_DOWN as exc:
        raise Unavailable(UNAVAILABLE_MESSAGE) from exc


class PersonalReads:
    """The two per-request reads of Recommend (opt-out flag, recent events), outage-safe.

    Parameters
    ----------
    optouts, events:
        The stores read on every recommend call.
    cooldown:
        Seconds to skip the reads after a failure.
    """

    def __init__(self, optouts: OptOutsStore, events: EventsStore, cooldown: float = 1.0) -> None:
        self.optouts = optouts
        self.events = events
        self.cooldown = cooldown
        self._skip_until = 0.0
        self._lock = threading.Lock()

    def read(self, user_id: str, since: datetime | None) -> tuple[bool, Sequence[Event]]:
        """``(opted_out, recent events)``; ``(True, [])`` while the database is down.

        Parameters
        ----------
        user_id:
            The shopper.
        since:
            Events after this time are "recent" (the bundle's last training event).
        """
        if time.monotonic() < self._skip_until:
            return True, []
        try:
            opted_out = self.optouts.is_opted_out(user_id)
            recent = self.events.recent_for_user(user_id, since=since)
        except DATABASE_DOWN as exc:
            with self._lock:
                first = time.monotonic() >= self._skip_until
                self._skip_until = time.monotonic() + self.cooldown
            if first:
                log.warning("recommend_non_personalized", reason="database down", error=repr(exc))
            return True, []
        return opted_out, recent
