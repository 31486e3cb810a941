"""The durable event log: validated events appended once each, read back as canonical events.

Events arrive from the event API, are validated here (the store never holds a row the
retraining job would reject), and are appended in one transaction per batch, so a batch is
written whole or not at all. ``event_id`` makes appends idempotent: a repeated id is counted as
a duplicate and not written again, whatever the rest of the row says. Times are held as integer
microseconds since the Unix epoch (UTC) so SQLite and PostgreSQL compare them identically.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from fairshelf.errors import InvalidArgument
from recsys.schema import EVENT_COLUMNS, EVENT_TYPES
from serving.rfc3339 import parse_rfc3339
from serving.store.db import METADATA, Database
from serving.store.hot_reads import HotReader

MAX_BATCH: Final[int] = 1000
MAX_ID_LENGTH: Final[int] = 256
# Clock skew tolerated on client-supplied timestamps.
# channel and region are short labels (a column of this width on PostgreSQL).
MAX_LABEL_LENGTH: Final[int] = 64
# A 32-bit column on PostgreSQL.
MAX_QUANTITY: Final[int] = 2**31 - 1
MAX_FUTURE: Final[timedelta] = timedelta(minutes=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

EVENTS = Table(
    "events",
    METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(MAX_ID_LENGTH), nullable=False, unique=True),
    Column("user_id", String(MAX_ID_LENGTH), nullable=False),
    Column("item_id", String(MAX_ID_LENGTH), nullable=False),
    Column("event_type", String(16), nullable=False),
    Column("ts_us", BigInteger, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Float, nullable=False),
    Column("session_id", String(MAX_ID_LENGTH), nullable=True),
    Column("channel", String(MAX_LABEL_LENGTH), nullable=True),
    Column("region", String(MAX_LABEL_LENGTH), nullable=True),
    Column("received_us", BigInteger, nullable=False),
)
Index("ix_events_user_ts", EVENTS.c.user_id, EVENTS.c.ts_us)
Index("ix_events_ts", EVENTS.c.ts_us)


# Served by the (user_id, ts_us) index; newest first.
_RECENT_SQL = (
    "SELECT event_id, item_id, event_type, ts_us, quantity, unit_price, session_id, channel, "
    "region FROM events WHERE user_id = ? AND ts_us > ? ORDER BY ts_us DESC, seq DESC LIMIT ?"
)


def to_us(ts: datetime) -> int:
    """Microseconds since the epoch for an aware datetime."""
    delta = ts.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    """The aware UTC datetime of ``us`` microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class Event:
    """One validated event (the canonical columns of SPEC §3)."""

    event_id: str
    user_id: str
    item_id: str
    event_type: str
    timestamp: datetime
    quantity: int
    unit_price: float
    session_id: str | None = None
    channel: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class AppendResult:
    """Outcome of one append: events newly written, and repeats of stored event ids."""

    accepted: int
    duplicates: int


def _text(
    raw: Mapping[str, Any],
    name: str,
    where: str,
    *,
    required: bool,
    max_length: int = MAX_ID_LENGTH,
) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise InvalidArgument(f"{where}.{name} is required", field=f"{where}.{name}")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{where}.{name} must be a non-empty string", field=f"{where}.{name}")
    if len(value) > max_length:
        raise InvalidArgument(
            f"{where}.{name} is longer than {max_length} characters", field=f"{where}.{name}"
        )
    return value


def _timestamp(raw: Mapping[str, Any], where: str, now: datetime) -> datetime:
    value = raw.get("timestamp")
    if value is None or value == "":
        return now
    field = f"{where}.timestamp"
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        ts = parse_rfc3339(value, field)
    else:
        raise InvalidArgument(f"{field} must be an RFC 3339 string", field=field)
    # A timestamp without offset is read as UTC, the contract's time zone.
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    if ts > now + MAX_FUTURE:
        raise InvalidArgument(f"{field} is in the future: {value!r}", field=field)
    return ts


def make_event(raw: Mapping[str, Any], index: int = 0, now: datetime | None = None) -> Event:
    """Validate one raw event (a JSON object or the fields of a proto message).

    Parameters
    ----------
    raw:
        Field name -> value; empty strings count as absent (proto3 defaults).
    index:
        Position in the batch, used in error fields (``events[3].event_type``).
    now:
        Server time, used when no timestamp is given.

    Returns
    -------
    Event

    Raises
    ------
    InvalidArgument
        Naming the field at fault: missing ids, unknown event type, unparsable or future
        timestamp, quantity < 1, negative or missing unit price.
    """
    where = f"events[{index}]"
    now = now or datetime.now(UTC)
    unknown = sorted(set(raw) - set(EVENT_COLUMNS))
    if unknown:
        raise InvalidArgument(f"{where} has unknown field(s) {unknown}", field=where)
    user_id = _text(raw, "user_id", where, required=True)
    item_id = _text(raw, "item_id", where, required=True)
    event_type = raw.get("event_type")
    if event_type not in EVENT_TYPES:
        raise InvalidArgument(
            f"{where}.event_type must be one of {', '.join(EVENT_TYPES)}, got {event_type!r}",
            field=f"{where}.event_type",
        )
    quantity = raw.get("quantity")
    quantity = 1 if quantity is None else quantity
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not 1 <= quantity <= MAX_QUANTITY
    ):
        raise InvalidArgument(
            f"{where}.quantity must be an integer in 1..{MAX_QUANTITY}, got {quantity!r}",
            field=f"{where}.quantity",
        )
    price = raw.get("unit_price")
    if price is None:
        raise InvalidArgument(
            f"{where}.unit_price is required (price paid or shown)", field=f"{where}.unit_price"
        )
    if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price):
        raise InvalidArgument(
            f"{where}.unit_price must be a number, got {price!r}", field=f"{where}.unit_price"
        )
    if price < 0:
        raise InvalidArgument(
            f"{where}.unit_price must be >= 0, got {price!r}", field=f"{where}.unit_price"
        )
    event_id = _text(raw, "event_id", where, required=False) or f"srv-{uuid.uuid4().hex}"
    assert user_id is not None and item_id is not None  # required=True guarantees it
    return Event(
        event_id=event_id,
        user_id=user_id,
        item_id=item_id,
        event_type=str(event_type),
        timestamp=_timestamp(raw, where, now),
        quantity=quantity,
        unit_price=float(price),
        session_id=_text(raw, "session_id", where, required=False),
        channel=_text(raw, "channel", where, required=False, max_length=MAX_LABEL_LENGTH),
        region=_text(raw, "region", where, required=False, max_length=MAX_LABEL_LENGTH),
    )


def make_events(raws: Sequence[Mapping[str, Any]]) -> list[Event]:
    """Validate a batch; the first bad event fails the whole batch (nothing half-written)."""
    if not raws:
        raise InvalidArgument("events must hold at least one event", field="events")
    if len(raws) > MAX_BATCH:
        raise InvalidArgument(
            f"events holds {len(raws)} events; at most {MAX_BATCH} per call", field="events"
        )
    now = datetime.now(UTC)
    return [make_event(raw, i, now) for i, raw in enumerate(raws)]


class EventsStore:
    """Append-only event log on a :class:`~serving.store.db.Database`.

    Parameters
    ----------
    db:
        SQLite (WAL) or PostgreSQL handle; the table is created if missing.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        db.create_tables(EVENTS)
        self._reader = HotReader(db)

    def _insert(self) -> Any:
        dialect = postgresql if self.db.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(EVENTS).on_conflict_do_nothing(index_elements=["event_id"])

    def append(self, events: Iterable[Event]) -> AppendResult:
        """Append events in one transaction, skipping event ids already stored.

        Returns
        -------
        AppendResult
            ``accepted`` new rows and ``duplicates`` (repeats within the batch included).
        """
        unique: dict[str, Event] = {}
        total = 0
        for ev in events:
            total += 1
            unique.setdefault(ev.event_id, ev)
        if not unique:
            return AppendResult(0, total)
        received = to_us(datetime.now(UTC))
        rows = [
            {
                "event_id": ev.event_id,
                "user_id": ev.user_id,
                "item_id": ev.item_id,
                "event_type": ev.event_type,
                "ts_us": to_us(ev.timestamp),
                "quantity": ev.quantity,
                "unit_price": ev.unit_price,
                "session_id": ev.session_id,
                "channel": ev.channel,
                "region": ev.region,
                "received_us": received,
            }
            for ev in unique.values()
        ]
        with self.db.engine.begin() as conn:
            # RETURNING lists only the rows actually inserted (conflicts return nothing) on
            # both backends; the batch commits or rolls back as one transaction.
            result = conn.execute(self._insert().returning(EVENTS.c.event_id), rows)
            accepted = len(result.all())
        return AppendResult(accepted, total - accepted)

    def recent_for_user(
        self, user_id: str, since: datetime | None, limit: int = 200
    ) -> list[Event]:
        """The user's events with a timestamp after ``since``, newest first.

        Parameters
        ----------
        user_id:
            Shopper id.
        since:
            Exclusive lower bound (the bundle's last training event); ``None``: all.
        limit:
            At most this many events.
        """
        lower = to_us(since) if since is not None else -(2**62)
        rows = self._reader.rows(_RECENT_SQL, (user_id, lower, int(limit)))
        return [
            Event(
                event_id=r[0],
                user_id=user_id,
                item_id=r[1],
                event_type=r[2],
                timestamp=from_us(int(r[3])),
                quantity=int(r[4]),
                unit_price=float(r[5]),
                session_id=r[6],
                channel=r[7],
                region=r[8],
            )
            for r in rows
        ]

    def count(self) -> int:
        """Number of stored events."""
        with self.db.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(EVENTS)).scalar_one())

    def read_canonical(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Every stored event in ``(since, until]`` as a canonical events DataFrame.

        Columns and dtypes are those of the data contract (``EVENT_DTYPES`` of
        ``training.data.canonical``; absent optional text is a missing value), ordered by time
        then arrival, so the retraining job can concatenate them with its files.
        """
        stmt = select(EVENTS)
        if since is not None:
            stmt = stmt.where(EVENTS.c.ts_us > to_us(since))
        if until is not None:
            stmt = stmt.where(EVENTS.c.ts_us <= to_us(until))
        stmt = stmt.order_by(EVENTS.c.ts_us, EVENTS.c.seq)
        with self.db.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(stmt).mappings().all())
        return _canonical_frame(frame)


def _row_to_event(row: Any) -> Event:
    return Event(
        event_id=row["event_id"],
        user_id=row["user_id"],
        item_id=row["item_id"],
        event_type=row["event_type"],
        timestamp=from_us(int(row["ts_us"])),
        quantity=int(row["quantity"]),
        unit_price=float(row["unit_price"]),
        session_id=row["session_id"],
        channel=row["channel"],
        region=row["region"],
    )


def _canonical_frame(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        frame = pd.DataFrame({c.name: pd.Series(dtype="object") for c in EVENTS.columns})
    out = pd.DataFrame(
        {
            "event_id": frame["event_id"].astype("str"),
            "user_id": frame["user_id"].astype("str"),
            "item_id": frame["item_id"].astype("str"),
            "event_type": frame["event_type"].astype("str"),
            "timestamp": pd.to_datetime(frame["ts_us"].astype("int64"), unit="us", utc=True).astype(
                "datetime64[us, UTC]"
            ),
            "quantity": frame["quantity"].astype("int64"),
            "unit_price": frame["unit_price"].astype("float64"),
            "session_id": frame["session_id"].astype("str").where(frame["session_id"].notna()),
            "channel": frame["channel"].astype("str").where(frame["channel"].notna()),
            "region": frame["region"].astype("str").where(frame["region"].notna()),
        }
    )
    return out[list(EVENT_COLUMNS)].reset_index(drop=True)
