"""Exposures written off the request path: a bounded buffer and one background writer.

A Recommend call appends one tuple to an in-memory buffer and returns; a writer thread takes
up to ``batch`` exposures at a time and writes them in one transaction. When the store fails
(database down, disk full), the batch in hand is kept and retried after a pause, the buffer
fills up to ``capacity``, and every exposure that finds it full is dropped and counted in
``fairshelf_exposures_dropped_total``: the call always answers, memory stays bounded, and the
loss is visible. A batch the database refuses as data (a constraint it breaks) is dropped and
counted at once instead of blocking every later exposure. On shutdown the writer drains what it can.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from prometheus_client import Counter
from sqlalchemy.exc import DataError, IntegrityError

from recsys.types import Recommendation, RecommendRequest
from serving.logging import get_logger
from serving.store.exposures_store import Exposure, ExposuresStore

log = get_logger("fairshelf.exposures")


class ExposureLog:
    """Buffers exposures and writes them in batches from a background thread.

    Parameters
    ----------
    store:
        Where batches go.
    dropped, written:
        Counters of exposures dropped (buffer full) and written.
    capacity:
        Most exposures held in memory while the store is slow or down.
    batch:
        Most exposures per write.
    interval:
        Seconds between writes when the buffer is not filling fast.
    retry_seconds:
        Pause after a failed write.
    """

    def __init__(
        self,
        store: ExposuresStore,
        dropped: Counter,
        written: Counter,
        *,
        capacity: int = 100_000,
        batch: int = 1000,
        interval: float = 0.5,
        retry_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.dropped = dropped
        self.written = written
        self.capacity = capacity
        self.batch = batch
        self.interval = interval
        self.retry_seconds = retry_seconds
        self._buf: deque[Exposure] = deque()
        self._pending: list[Exposure] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one drain at a time (writer thread or flush)
        self._thread: threading.Thread | None = None

    def record(self, exposure: Exposure) -> None:
        """Queue one exposure, or count it as dropped when the buffer is full (never blocks)."""
        buf = self._buf
        if len(buf) >= self.capacity:
            self.dropped.inc()
            return
        buf.append(exposure)
        if len(buf) == self.batch:
            self._wake.set()

    def record_answer(
        self,
        request_id: str,
        experiment: str,
        request: RecommendRequest,
        result: Recommendation,
        started: float,
    ) -> None:
        """Queue the exposure of one Recommend answer; ``started`` is the call's
        ``time.perf_counter()`` at entry (the service time is logged for the guardrails)."""
        self.record(
            Exposure(
                time.time_ns() // 1000,
                request_id,
                experiment,
                request.user_id,
                result.variant,
                result.model_version,
                request.context.surface,
                result.strategy,
                int((time.perf_counter() - started) * 1e6),
                tuple([it.item_id for it in result.items]),
            )
        )

    @property
    def backlog(self) -> int:
        """Exposures waiting to be written."""
        return len(self._buf) + len(self._pending)

    def flush(self) -> bool:
        """Write everything buffered now; ``False`` if the store refused a batch."""
        with self._lock:
            return self._drain()

    def _drain(self) -> bool:
        while True:
            if not self._pending:
                take = min(self.batch, len(self._buf))
                if take == 0:
                    return True
                self._pending = [self._buf.popleft() for _ in range(take)]
            try:
                self.store.append(self._pending)
            except (DataError, IntegrityError) as exc:
                # The database refused these rows, not the connection: retrying would block
                # every later exposure behind them, so they are dropped and counted.
                log.error("exposure_batch_refused", count=len(self._pending), error=repr(exc))
                self.dropped.inc(len(self._pending))
                self._pending = []
                continue
            except Exception as exc:  # the store is down: keep the batch, retry later
                log.warning("exposure_write_failed", pending=self.backlog, error=repr(exc))
                return False
            self.written.inc(len(self._pending))
            self._pending = []

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._lock:
                ok = self._drain()
            if not ok:
                self._stop.wait(self.retry_seconds)

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="fairshelf-exposures", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the writer and write what is left (within ``timeout`` seconds of trying)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        deadline = time.monotonic() + timeout
        while self.backlog and time.monotonic() < deadline:
            if not self.flush():
                break
        if self.backlog:
            log.warning("exposures_lost_at_shutdown", count=self.backlog)
