"""Group commit for the quote log: quotes are handed to a writer thread, never dropped.

A database commit costs a millisecond or more, far above the guard's budget of 50 µs per
quoted item, so the guard does not wait for one. It puts each request's quotes on a bounded
queue; a single writer thread drains the queue and stores whatever has gathered in one
transaction. A quote that is still on its way is served from memory by :meth:`get`, so
ExplainQuote works the moment a quote exists. When the queue is full the guard waits (back
pressure) rather than lose a quote. :meth:`flush` waits until everything handed in is stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence

from pricing.fairness.ports import QuoteLog
from pricing.fairness.quotes import Quote

_log = logging.getLogger(__name__)


class BufferedQuoteLog:
    """A :class:`~pricing.fairness.ports.QuoteLog` that stores through a writer thread.

    Parameters
    ----------
    inner:
        The durable quote log (``serving.store.quote_store.QuoteStore``).
    max_pending:
        Quotes that may wait at most; :meth:`add` blocks beyond it.
    max_batch:
        Quotes stored per transaction at most.
    linger:
        Seconds the writer waits for more quotes before committing a small batch: one
        transaction per request would cost more than the request.
    """

    def __init__(
        self,
        inner: QuoteLog,
        *,
        max_pending: int = 50_000,
        max_batch: int = 5_000,
        linger: float = 0.02,
    ) -> None:
        self._inner = inner
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._linger = linger
        self._queue: deque[Quote] = deque()
        self._pending: dict[str, Quote] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._in_flight = 0
        self._flushing = 0
        self._thread = threading.Thread(
            target=self._run, name="fairshelf-quote-writer", daemon=True
        )
        self._thread.start()

    def add(self, quotes: Sequence[Quote]) -> None:
        """Hand ``quotes`` to the writer; returns once they are queued (and explainable)."""
        with self._cond:
            while len(self._pending) + len(quotes) > self._max_pending and not self._closed:
                self._cond.wait(0.05)
            if self._closed:
                # After close nothing runs in the background: store synchronously.
                self._inner.add(quotes)
                return
            was_idle = not self._queue
            for quote in quotes:
                self._pending[quote.quote_id] = quote
            self._queue.extend(quotes)
            # Wake the writer only when it waits for work or has a full batch: waking it on
            # every request while it lingers would cost a thread switch per request.
            if was_idle or len(self._queue) >= self._max_batch:
                self._cond.notify_all()

    def get(self, quote_id: str) -> Quote:
        """The quote, from memory while it is on its way, else from the store."""
        with self._cond:
            quote = self._pending.get(quote_id)
        return quote if quote is not None else self._inner.get(quote_id)

    def iter_quotes(self) -> Iterator[Quote]:
        """Every stored quote (waits for pending ones first)."""
        self.flush()
        return self._inner.iter_quotes()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every quote handed in so far is stored."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1  # the writer stops lingering while someone waits
            self._cond.notify_all()
            try:
                while (self._queue or self._in_flight) and time.monotonic() < deadline:
                    self._cond.wait(0.05)
            finally:
                self._flushing -= 1

    def close(self) -> None:
        """Store what is pending and stop the writer thread."""
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=30.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                deadline = time.monotonic() + self._linger
                while (
                    len(self._queue) < self._max_batch
                    and not self._closed
                    and not self._flushing
                    and (left := deadline - time.monotonic()) > 0
                ):
                    self._cond.wait(left)
                batch = [
                    self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))
                ]
                self._in_flight = len(batch)
            stored = False
            while not stored:
                try:
                    self._inner.add(batch)
                    stored = True
                except Exception:
                    # Never drop a served quote: keep it and retry until the store is back.
                    _log.exception("quote log write failed; retrying")
                    time.sleep(0.5)
            with self._cond:
                for quote in batch:
                    self._pending.pop(quote.quote_id, None)
                self._in_flight = 0
                self._cond.notify_all()
