"""One database handle for every store: SQLite (WAL) by default, PostgreSQL by URL.

SQLAlchemy Core gives both backends through one interface; each store module declares its own
tables on :data:`METADATA` and receives a :class:`Database`.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, create_engine, event
from sqlalchemy.engine import Connection, Engine

METADATA = MetaData()

# Key of the PostgreSQL advisory lock that serialises schema creation between processes.
_SCHEMA_LOCK_KEY = 0x66616972  # "fair"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # First: switching a fresh file to WAL takes a lock another process may hold a moment.
    cur.execute("PRAGMA busy_timeout=5000")
    # WAL lets readers run while the event writer appends; synchronous=NORMAL keeps every
    # committed transaction durable across a process crash (not across power loss of the host).
    _set_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _set_wal(cur: Any, attempts: int = 100) -> None:
    # SQLite can answer "database is locked" at once, without its busy handler, when several
    # processes open a fresh file together and one is still switching it to WAL or creating
    # the schema (seen with 8 workers starting at one instant): wait and ask again.
    for attempt in range(attempts):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.005 + 0.045 * random.random())


class Database:
    """A SQLAlchemy engine plus the schema of every fairshelf table.

    Parameters
    ----------
    url:
        ``sqlite:///path/to/file.db`` (a bare filesystem path is accepted too) or
        ``postgresql+psycopg://user:pass@host/db``.
    """

    def __init__(self, url: str) -> None:
        if "://" not in url:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{url}"
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
            # A database that does not answer (host gone, network cut) must fail a call in
            # seconds, as UNAVAILABLE, not hold a request thread for the OS's TCP timeout.
            kwargs["connect_args"] = {"connect_timeout": 3}
            kwargs["pool_timeout"] = 5
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def create_tables(self, *tables: Table) -> None:
        """Create the missing ``tables`` and their indexes, in one locked transaction.

        Several processes open the same database at once (``fairshelf serve --workers``,
        replicas starting together); a bare check-then-create lets two of them both find a
        table missing and the second CREATE fail. Under the lock the second one finds it.
        """
        with self.engine.connect() as conn:
            self._lock_schema(conn)
            for table in tables:
                table.create(conn, checkfirst=True)
                for index in table.indexes:  # also indexes added after the table was made
                    index.create(conn, checkfirst=True)
            conn.commit()

    def _lock_schema(self, conn: Connection) -> None:
        if self.is_sqlite:
            # pysqlite starts no transaction before DDL; this one takes the write lock (other
            # processes wait up to busy_timeout) and makes the CREATEs one unit.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")

    def create_all(self) -> None:
        """Create every table declared on :data:`METADATA` (idempotent, under the schema lock)."""
        self.create_tables(*METADATA.sorted_tables)

    def close(self) -> None:
        self.engine.dispose()
