"""Where signed checkpoints of the audit log are kept, outside its database (rule G5).

Three kinds, named in ``Settings.checkpoint_sinks`` (and in ``audit verify --checkpoints``):

- a directory: one file ``checkpoint-<n, 8 digits>.json`` per checkpoint, created with a hard
  link so that two processes never both write checkpoint ``n``;
- a database URL (``sqlite:///...``, ``postgresql+psycopg://...``): a table
  ``audit_checkpoints(n, body)``, best a database another team runs;
- ``log``: one ``audit_checkpoint`` line per checkpoint on the server's JSON log stream, for a
  log pipeline to keep; read back from a file of such lines.

The first sink numbers the checkpoints: :meth:`CheckpointSink.append` refuses a number already
taken (:class:`CheckpointTaken`), so several serving processes sign one chain of checkpoints.
The log stream can neither refuse nor be read back, so it is only ever a copy after a
directory or a database.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import BigInteger, Column, MetaData, Table, Text, func, insert, select
from sqlalchemy.exc import IntegrityError

from fairshelf.errors import InvalidArgument
from pricing.fairness.checkpoints import Checkpoint
from serving.logging import get_logger
from serving.store.db import Database

LOG_SINK = "log"
_log = get_logger("fairshelf.checkpoints")

# Its own metadata: the table lives in the sink's database, not in the audited one.
_METADATA = MetaData()
checkpoints_table = Table(
    "audit_checkpoints",
    _METADATA,
    Column("n", BigInteger, primary_key=True, autoincrement=False),
    Column("body", Text, nullable=False),
)


class CheckpointTaken(Exception):
    """Another process stored a checkpoint with this number first."""


class CheckpointSink(Protocol):
    """A place checkpoints are appended to and read back from."""

    name: str

    def append(self, cp: Checkpoint) -> None:
        """Store ``cp``; raise :class:`CheckpointTaken` when its number is taken."""
        ...

    def latest(self) -> Checkpoint | None:
        """The checkpoint with the highest number, if any."""
        ...

    def read_all(self) -> list[Checkpoint]:
        """Every checkpoint, in the order kept."""
        ...


def _text(cp: Checkpoint) -> str:
    return json.dumps(cp.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class DirectorySink:
    """Checkpoints as files in a directory (created if missing)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.path.mkdir(parents=True, exist_ok=True)

    def _files(self) -> list[Path]:
        return sorted(self.path.glob("checkpoint-*.json"))

    def append(self, cp: Checkpoint) -> None:
        """Write ``checkpoint-<n>.json`` whole (temp file, fsync, link: never half a file)."""
        final = self.path / f"checkpoint-{cp.n:08d}.json"
        tmp = self.path / f".checkpoint-{cp.n:08d}.{os.getpid()}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(_text(cp) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, final)
        except FileExistsError:
            raise CheckpointTaken(f"{final} exists") from None
        finally:
            tmp.unlink(missing_ok=True)

    def latest(self) -> Checkpoint | None:
        """The highest-numbered file's checkpoint."""
        files = self._files()
        return _read_file(files[-1]) if files else None

    def read_all(self) -> list[Checkpoint]:
        """Every file, by name."""
        return [_read_file(f) for f in self._files()]


def _read_file(path: Path) -> Checkpoint:
    try:
        return Checkpoint.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, AttributeError) as exc:
        raise InvalidArgument(f"{path} is not a checkpoint: {exc}", field="checkpoints") from exc


class DatabaseSink:
    """Checkpoints in a table of another database."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.name = url.split("@")[-1]  # never the password
        self.db.create_tables(checkpoints_table)

    def append(self, cp: Checkpoint) -> None:
        """Insert row ``n``; a taken number is :class:`CheckpointTaken`."""
        try:
            with self.db.engine.begin() as conn:
                conn.execute(insert(checkpoints_table).values(n=cp.n, body=_text(cp)))
        except IntegrityError:
            raise CheckpointTaken(f"checkpoint {cp.n} exists in {self.name}") from None

    def latest(self) -> Checkpoint | None:
        """The row with the highest ``n``."""
        with self.db.engine.connect() as conn:
            top = conn.execute(select(func.max(checkpoints_table.c.n))).scalar()
            if top is None:
                return None
            body = conn.execute(
                select(checkpoints_table.c.body).where(checkpoints_table.c.n == top)
            ).scalar_one()
        return Checkpoint.from_json(json.loads(body))

    def read_all(self) -> list[Checkpoint]:
        """Every row, by ``n``."""
        with self.db.engine.connect() as conn:
            bodies = conn.execute(
                select(checkpoints_table.c.body).order_by(checkpoints_table.c.n)
            ).scalars()
            return [Checkpoint.from_json(json.loads(b)) for b in bodies]

    def close(self) -> None:
        """Release the connection pool."""
        self.db.close()


class LogSink:
    """Checkpoints as ``audit_checkpoint`` lines of the server's log stream."""

    name = LOG_SINK

    def __init__(self) -> None:
        self._last: Checkpoint | None = None

    def append(self, cp: Checkpoint) -> None:
        """Log ``cp`` (with its signature, never the key)."""
        _log.info("audit_checkpoint", checkpoint=cp.to_json())
        self._last = cp

    def latest(self) -> Checkpoint | None:
        """The last one this process logged."""
        return self._last

    def read_all(self) -> list[Checkpoint]:
        """Only what this process logged last: read the log file with :func:`read_log_file`."""
        return [] if self._last is None else [self._last]


def read_log_file(path: Path) -> list[Checkpoint]:
    """The checkpoints of a JSON log file, in line order (other lines are skipped)."""
    found: list[Checkpoint] = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            data = _json_object(line)
            body = data.get("checkpoint") if data else None
            if isinstance(body, dict):
                found.append(Checkpoint.from_json(body))
    return found


def _json_object(line: str) -> dict[str, Any] | None:
    start = line.find("{")
    if start < 0:
        return None
    try:
        data = json.loads(line[start:])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def open_sink(spec: str) -> CheckpointSink:
    """The sink ``spec`` names: ``log``, a database URL (has ``://``), else a directory."""
    if spec == LOG_SINK:
        return LogSink()
    if "://" in spec:
        return DatabaseSink(spec)
    return DirectorySink(Path(spec))


def read_source(spec: str) -> tuple[str, list[Checkpoint]]:
    """The checkpoints kept at ``spec`` for verification: a directory, a database URL, or a
    JSON log file.

    Raises
    ------
    InvalidArgument
        ``spec`` names nothing that exists, or holds something that is not a checkpoint.
    """
    if "://" in spec:
        sink = DatabaseSink(spec)
        try:
            return sink.name, sink.read_all()
        finally:
            sink.close()
    path = Path(spec)
    if path.is_dir():
        return str(path), DirectorySink(path).read_all()
    if path.is_file():
        return str(path), read_log_file(path)
    raise InvalidArgument(
        f"--checkpoints {spec}: no such directory, file or database URL", field="checkpoints"
    )


def iter_covering(sink: CheckpointSink, seq: int) -> Iterator[Checkpoint]:
    """The sink's checkpoints that sign ``seq`` or later, oldest first."""
    for cp in sink.read_all():
        if cp.seq >= seq:
            yield cp
