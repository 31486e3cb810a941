"""Group commit for the quote log: quotes are handed to a writer thread, never dropped.

A database commit costs a millisecond or more, far above the guard's budget of 50 µs per
quoted item, so the guard does not wait for one. It puts each request's quotes on a bounded
queue; a single writer thread drains the queue and stores whatever has gathered in one
transaction (or a few, of ``max_batch`` quotes each). A quote that is still on its way is
served from memory by :meth:`get`, so ExplainQuote works the moment a quote exists. When the
queue is full the guard waits (back pressure) rather than lose a quote, and when the store
stays down past ``max_wait`` the request is refused (:class:`~fairshelf.errors.Unavailable`)
instead of hanging: a quote that cannot be logged is never served, and every quote already
handed in is kept until the store is back. :meth:`flush` waits until everything handed in is
stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from operator import itemgetter

from fairshelf.errors import Unavailable
from fairshelf.interpreter_turns import Turns, free_in_turns
from pricing.fairness.ports import QuoteLog
from pricing.fairness.quotes import Quote

_log = logging.getLogger(__name__)

# Quote.quote_id, read in C for a whole request at once.
_QUOTE_ID = itemgetter(Quote._fields.index("quote_id"))


class BufferedQuoteLog:
    """A :class:`~pricing.fairness.ports.QuoteLog` that stores through a writer thread.

    Parameters
    ----------
    inner:
        The durable quote log (``serving.store.quote_store.QuoteStore``).
    max_pending:
        Quotes that may wait at most; :meth:`add` blocks beyond it.
    max_batch:
        Quotes stored per transaction at most (the writer takes everything that has gathered
        and stores it in transactions of this size).
    linger:
        Seconds the writer waits for more quotes before committing a small batch: one
        transaction per request would cost more than the request.
    max_wait:
        Seconds :meth:`add` waits for room before refusing the request.
    """

    def __init__(
        self,
        inner: QuoteLog,
        *,
        max_pending: int = 50_000,
        max_batch: int = 5_000,
        linger: float = 0.02,
        max_wait: float = 5.0,
    ) -> None:
        self._inner = inner
        self._max_wait = max_wait
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._linger = linger
        # Quotes handed in and not yet taken by the writer, in served order, by id; and the
        # ones the writer is storing. The writer takes all fresh quotes at once by swapping
        # the dict, and lets go of a stored batch by dropping its dict: no per-quote work
        # under the lock that a request's add() waits for.
        self._fresh: dict[str, Quote] = {}
        self._writing: dict[str, Quote] = {}
        # Quotes of ``_writing`` not stored yet: what counts against ``max_pending`` and what
        # flush() waits for, released transaction by transaction.
        self._unstored = 0
        self._cond = threading.Condition()
        self._closed = False
        self._flushing = 0
        self._thread = threading.Thread(
            target=self._run, name="fairshelf-quote-writer", daemon=True
        )
        self._thread.start()

    def add(self, quotes: Sequence[Quote]) -> None:
        """Hand ``quotes`` to the writer; returns once they are queued (and explainable).

        Raises
        ------
        Unavailable
            The queue stayed full for ``max_wait`` seconds (the store is not keeping up or is
            down); ``quotes`` were not taken, so they must not be served.
        """
        with self._cond:
            deadline: float | None = None
            while (
                len(self._fresh) + self._unstored + len(quotes) > self._max_pending
                and not self._closed
            ):
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._max_wait
                elif now >= deadline:
                    waiting = len(self._fresh) + self._unstored
                    raise Unavailable(
                        f"the quote log is not storing quotes ({waiting} waiting for "
                        f"{self._max_wait:g} s); quotes are refused until it catches up"
                    )
                self._cond.wait(min(0.05, deadline - now))
            if self._closed:
                # After close nothing runs in the background: store synchronously.
                self._inner.add(quotes)
                return
            was_idle = not self._fresh
            self._fresh.update(zip(map(_QUOTE_ID, quotes), quotes, strict=True))
            # Wake the writer only when it waits for work or has a full batch: waking it on
            # every request while it lingers would cost a thread switch per request.
            if was_idle or len(self._fresh) >= self._max_batch:
                self._cond.notify_all()

    def get(self, quote_id: str) -> Quote:
        """The quote, from memory while it is on its way, else from the store."""
        with self._cond:
            quote = self._fresh.get(quote_id) or self._writing.get(quote_id)
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
                while (self._fresh or self._unstored) and time.monotonic() < deadline:
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
                while not self._fresh and not self._closed:
                    self._cond.wait()
                if not self._fresh and self._closed:
                    return
                deadline = time.monotonic() + self._linger
                while (
                    len(self._fresh) < self._max_batch
                    and not self._closed
                    and not self._flushing
                    and (left := deadline - time.monotonic()) > 0
                ):
                    self._cond.wait(left)
                taken, self._fresh = self._fresh, {}
                self._writing = taken
                self._unstored = len(taken)
            batch = list(taken.values())
            for start in range(0, len(batch), self._max_batch):
                part = batch[start : start + self._max_batch]
                self._store(part)
                with self._cond:
                    self._unstored -= len(part)
                    self._cond.notify_all()
            with self._cond:
                self._writing = {}
            # The stored quotes are freed here, outside the lock, a chunk at a time: freeing
            # 20,000 at once holds the interpreter for about 2 ms that no request can cut.
            del part
            taken.clear()
            free_in_turns(batch, Turns())

    def _store(self, batch: list[Quote]) -> None:
        """Store one transaction's worth, retrying until the store takes it."""
        while True:
            try:
                self._inner.add(batch)
                return
            except Exception:
                # Never drop a served quote: keep it and retry until the store is back.
                _log.exception("quote log write failed; retrying")
                time.sleep(0.5)
