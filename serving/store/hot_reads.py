"""Hot-path reads for the per-request lookups (opt-out flag, a shopper's recent events).

Every recommend call makes these two lookups, so they skip SQLAlchemy's per-call statement
building: on SQLite each thread keeps its own ``sqlite3`` connection (autocommit, WAL, so each
query sees every committed write of any process); on other backends a statement compiled once
is executed through the pooled engine. Writes always go through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text

from serving.store.db import Database


class HotReader:
    """Runs fixed read-only SQL with positional parameters.

    Parameters
    ----------
    db:
        The database handle.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._local = threading.local()
        self._sqlite_path: str | None = None
        if db.is_sqlite:
            path = db.engine.url.database
            if path and path != ":memory:":
                self._sqlite_path = path
        self._compiled: dict[str, Any] = {}

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self._sqlite_path is not None
            conn = sqlite3.connect(self._sqlite_path, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA busy_timeout=5000")
            self._local.conn = conn
        return conn

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run ``sql`` (``?`` placeholders) and return all rows as tuples."""
        if self._sqlite_path is not None:
            return self._conn().execute(sql, tuple(params)).fetchall()
        stmt = self._compiled.get(sql)
        names = [f"p{i}" for i in range(len(params))]
        if stmt is None:
            numbered = sql
            for name in names:
                numbered = numbered.replace("?", f":{name}", 1)
            stmt = self._compiled[sql] = text(numbered)
        bound: Mapping[str, Any] = dict(zip(names, params, strict=True))
        with self.db.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(stmt, bound)]
