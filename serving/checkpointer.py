"""Signs the audit log's head into the checkpoint sinks, every N records or T seconds.

A thread looks at the log about once a second. When ``checkpoint_every_records`` records or
``checkpoint_every_seconds`` have passed since the last checkpoint (and the log has grown), it
reads the records since then, checks that they extend the last checkpoint's head (a server
never signs a log that was rewritten under it: it logs ``audit_checkpoint_refused`` instead),
signs the new head and appends the checkpoint to the first sink, then copies it to the others.
When another process took the number first, this one lets it be. A last checkpoint is signed
on close. The private key is read once at start from the setting or its file and never logged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fairshelf.errors import InvalidArgument
from pricing.fairness.audit_chain import utc_timestamp
from pricing.fairness.checkpoints import (
    Checkpoint,
    load_private_key,
    sign_checkpoint,
    verify_consistency,
)
from pricing.fairness.quote_batches import BATCH_KIND
from serving.logging import get_logger
from serving.settings import Settings
from serving.store.audit_store import AuditStore
from serving.store.checkpoint_sinks import LOG_SINK, CheckpointSink, CheckpointTaken, open_sink

log = get_logger("fairshelf.checkpoints")


class Checkpointer:
    """Signs checkpoints of one audit log into ``sinks`` (the first one numbers them).

    Parameters
    ----------
    audit:
        The audit log.
    key:
        The Ed25519 signing key.
    sinks:
        At least one sink.
    every_records, every_seconds:
        A checkpoint is due when the log grew by this many records, or this long after the
        last one (when it grew at all).
    """

    def __init__(
        self,
        audit: AuditStore,
        key: Ed25519PrivateKey,
        sinks: Sequence[CheckpointSink],
        *,
        every_records: int,
        every_seconds: float,
    ) -> None:
        if not sinks:
            raise InvalidArgument(
                "at least one checkpoint sink is needed", field="checkpoint_sinks"
            )
        self._audit = audit
        self._key = key
        self.sinks = list(sinks)
        self._every_records = every_records
        self._every_seconds = every_seconds
        self._started = time.time()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def checkpoint(self, force: bool = False) -> Checkpoint | None:
        """Sign the head now if due (always, when ``force`` and the log grew).

        Returns
        -------
        Checkpoint | None
            The new checkpoint, or None when none was due, another process signed it first,
            or the log does not extend the last checkpoint.
        """
        with self._lock:
            primary = self.sinks[0]
            last = primary.latest()
            since = 0 if last is None else last.seq
            fresh = self._audit.records_between(since)
            if not fresh:
                return None
            last_at = self._started if last is None else _epoch(last.time)
            if not (
                force
                or len(fresh) >= self._every_records
                or time.time() - last_at >= self._every_seconds
            ):
                return None
            head = fresh[-1]
            probe = Checkpoint("", 0, "", head.seq, head.hash, "", 0)
            problem = verify_consistency(last, probe, fresh)
            if problem is not None:
                log.error("audit_checkpoint_refused", reason=problem, last_signed_seq=since)
                return None
            sealed = sum(int(r.payload.get("rows", 0)) for r in fresh if r.kind == BATCH_KIND)
            cp = sign_checkpoint(
                self._key,
                previous=last,
                seq=head.seq,
                head_hash=head.hash,
                time=utc_timestamp(),
                tree_size=(0 if last is None else last.tree_size) + sealed,
            )
            try:
                primary.append(cp)
            except CheckpointTaken:
                return None
            for sink in self.sinks[1:]:
                try:
                    sink.append(cp)
                except Exception as exc:  # one lost copy must not stop the others
                    log.error("audit_checkpoint_copy_failed", sink=sink.name, error=repr(exc))
            return cp

    def _run(self) -> None:
        while not self._stop.wait(min(1.0, self._every_seconds)):
            try:
                self.checkpoint()
            except Exception as exc:  # keep going through a transient database error
                log.error("audit_checkpoint_failed", error=repr(exc))

    def start(self) -> None:
        """Start the checkpoint thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fairshelf-checkpoints", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and sign what was logged since the last checkpoint."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.checkpoint(force=True)
        except Exception as exc:
            log.error("audit_checkpoint_failed", error=repr(exc))
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                close()


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def signing_key(settings: Settings) -> Ed25519PrivateKey | None:
    """The checkpoint key from ``checkpoint_key`` or ``checkpoint_key_file`` (None: neither).

    Raises
    ------
    InvalidArgument
        Both are set, the file is missing, or the text is no Ed25519 PEM private key.
    """
    if settings.checkpoint_key is not None and settings.checkpoint_key_file is not None:
        raise InvalidArgument(
            "set checkpoint_key or checkpoint_key_file, not both", field="checkpoint_key"
        )
    if settings.checkpoint_key is not None:
        pem = settings.checkpoint_key.get_secret_value().encode("utf-8")
        return load_private_key(pem, "setting checkpoint_key")
    if settings.checkpoint_key_file is not None:
        path = settings.checkpoint_key_file
        if not path.is_file():
            raise InvalidArgument(
                f"checkpoint_key_file {path} does not exist", field="checkpoint_key_file"
            )
        return load_private_key(path.read_bytes(), f"checkpoint_key_file {path}")
    return None


def build_checkpointer(settings: Settings, audit: AuditStore) -> Checkpointer | None:
    """The checkpointer the settings ask for (None when no sink is configured).

    Raises
    ------
    InvalidArgument
        Sinks without a key, a key without sinks, or a bad key.
    """
    key = signing_key(settings)
    if not settings.checkpoint_sinks:
        if key is not None:
            raise InvalidArgument(
                "a checkpoint key is set but no checkpoint_sinks", field="checkpoint_sinks"
            )
        return None
    if key is None:
        raise InvalidArgument(
            "checkpoint_sinks need a signing key (checkpoint_key or checkpoint_key_file)",
            field="checkpoint_key",
        )
    if settings.checkpoint_sinks[0] == LOG_SINK:
        # The first sink numbers checkpoints across processes and restarts; a log stream
        # cannot be read back to do so.
        raise InvalidArgument(
            "the first checkpoint sink must be a directory or a database URL; 'log' can only "
            "follow one",
            field="checkpoint_sinks",
        )
    return Checkpointer(
        audit,
        key,
        [open_sink(spec) for spec in settings.checkpoint_sinks],
        every_records=settings.checkpoint_every_records,
        every_seconds=settings.checkpoint_every_seconds,
    )
