"""The exposure log: which shopper was shown which list, under which experiment variant.

One row per Recommend answer: request id, experiment, shopper, variant, model version,
surface, the recommender's strategy, the service time of the call, and the item ids in the
order shown (a JSON array; position = index + 1). Rows are written in batches by
:class:`serving.exposure_log.ExposureLog`, never on the request path, and read back per
experiment for its readout. Times are integer microseconds since the epoch, as for events.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import pandas as pd
from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, select

from fairshelf.interpreter_turns import Turns
from serving.store.db import METADATA, Database
from serving.store.events_store import MAX_ID_LENGTH, to_us

EXPOSURES = Table(
    "exposures",
    METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(MAX_ID_LENGTH), nullable=False),
    Column("experiment", String(MAX_ID_LENGTH), nullable=False),
    Column("user_id", String(MAX_ID_LENGTH), nullable=False),
    Column("variant", String(MAX_ID_LENGTH), nullable=False),
    Column("model_version", String(MAX_ID_LENGTH), nullable=False),
    Column("surface", String(MAX_ID_LENGTH), nullable=False),
    Column("strategy", String(MAX_ID_LENGTH), nullable=False),
    Column("latency_us", Integer, nullable=False),
    Column("ts_us", BigInteger, nullable=False),
    Column("items", Text, nullable=False),
)
Index("ix_exposures_experiment_ts", EXPOSURES.c.experiment, EXPOSURES.c.ts_us)


class Exposure(NamedTuple):
    """One logged Recommend answer (a tuple: it is built on the request path)."""

    ts_us: int
    request_id: str
    experiment: str
    user_id: str
    variant: str
    model_version: str
    surface: str
    strategy: str
    latency_us: int
    items: tuple[str, ...]


# Rows per insert statement (a pause may follow each).
_CHUNK = 200

# SQLite: each chunk's rows arrive as one JSON text (an array of Exposure tuples, ``items``
# last) and are unpacked by the statement itself, so the whole insert runs inside one
# ``sqlite3_step``, which the driver runs without the interpreter lock: request threads keep
# the lock while the rows are stored. (``executemany`` took the lock back for every row, and
# the request threads and the writer traded it a few times per Recommend.)
_SQLITE_INSERT = (
    f"INSERT INTO exposures ({', '.join(Exposure._fields)}) SELECT "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(Exposure._fields)))
    + " FROM json_each(?)"
)


def _items_json(items: tuple[str, ...]) -> str:
    # The text SQLite's json_extract gives the array: both backends store the same bytes.
    return json.dumps(list(items), separators=(",", ":"))


class ExposuresStore:
    """Append and read exposures on a :class:`~serving.store.db.Database`.

    Parameters
    ----------
    db:
        SQLite or PostgreSQL handle; the table is created if missing.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        # Every Recommend is one row, so the writer's CPU per row counts against serving (it
        # shares the worker's interpreter lock): on SQLite the rows are one JSON text per
        # chunk (about 2 us a row to encode, in C), against 9.5 us a row through
        # SQLAlchemy's insert of dicts. Other backends keep SQLAlchemy's (its batching, types).
        self.driver_insert = db.is_sqlite
        db.create_tables(EXPOSURES)

    def append(self, exposures: Sequence[Exposure]) -> int:
        """Write a batch in one transaction; returns the rows written.

        The writer works in turns (:class:`~fairshelf.interpreter_turns.Turns`): rows are
        encoded and inserted ``_CHUNK`` at a time with a pause after each chunk when its turn
        is over, so a request waits for the interpreter lock about half a millisecond at most,
        not for the batch.
        """
        if not exposures:
            return 0
        turns = Turns()
        with self.db.engine.begin() as conn:
            for lo in range(0, len(exposures), _CHUNK):
                part = exposures[lo : lo + _CHUNK]
                if self.driver_insert:
                    # One statement, one parameter: SQLAlchemy still turns the driver's errors
                    # into its own (a refused row is an IntegrityError, dropped and counted).
                    conn.exec_driver_sql(_SQLITE_INSERT, (json.dumps(part),))
                else:
                    dicts = [{**e._asdict(), "items": _items_json(e.items)} for e in part]
                    conn.execute(EXPOSURES.insert(), dicts)
                turns.tick()
        return len(exposures)

    def experiments(self) -> list[str]:
        """Names of the experiments with at least one exposure, sorted."""
        stmt = select(EXPOSURES.c.experiment).distinct().order_by(EXPOSURES.c.experiment)
        with self.db.engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(stmt)]

    def read(
        self, experiment: str, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Exposures of ``experiment`` in ``[since, until]``, oldest first.

        Returns
        -------
        pandas.DataFrame
            The columns of :class:`Exposure` with ``ts`` (UTC datetime) for ``ts_us`` and
            ``items`` as lists of item ids.
        """
        stmt = select(EXPOSURES).where(EXPOSURES.c.experiment == experiment)
        if since is not None:
            stmt = stmt.where(EXPOSURES.c.ts_us >= to_us(since))
        if until is not None:
            stmt = stmt.where(EXPOSURES.c.ts_us <= to_us(until))
        stmt = stmt.order_by(EXPOSURES.c.ts_us, EXPOSURES.c.seq)
        with self.db.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(stmt).mappings().all())
        if frame.empty:
            frame = pd.DataFrame({c: pd.Series(dtype="object") for c in Exposure._fields})
            frame["ts"] = pd.Series(dtype="datetime64[us, UTC]")
            return frame
        frame["ts"] = pd.to_datetime(frame["ts_us"].astype("int64"), unit="us", utc=True)
        frame["items"] = frame["items"].map(json.loads)
        return frame.drop(columns=["seq"])
