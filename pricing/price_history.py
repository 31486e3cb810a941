"""Served prices over time: what the 24 h change limit is measured against.

:class:`PriceHistory` is the interface the engine needs; :class:`InMemoryPriceHistory` keeps it
in process (the simulator, the benchmarks, a single server), and
``serving/store/price_history_store.py`` keeps it in the embedded database.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol


class PriceHistory(Protocol):
    """Prices served per item, each in force from its epoch start until the next one.

    An implementation may also offer ``record_many(entries)``; the engine then records all
    the prices it decided in one call with a single write. It may also offer
    ``last_and_in_force(item_id, since_s, last_until_s, until_s)`` (see
    :meth:`InMemoryPriceHistory.last_and_in_force`); the engine then reads both in one call.
    """

    def record(self, item_id: str, start: datetime, price: float) -> None:
        """Note that ``price`` was served for ``item_id`` from ``start`` on."""

    def in_force(self, item_id: str, since: datetime, until: datetime) -> Sequence[float]:
        """Every price in force at some moment of ``[since, until]``: the last one recorded at or
        before ``since`` plus every one recorded after it up to ``until``."""

    def last(self, item_id: str, until: datetime) -> float | None:
        """The latest price recorded at or before ``until`` (``None`` when there is none)."""


class InMemoryPriceHistory:
    """A :class:`PriceHistory` in process memory: per item, sorted (time, price) lists."""

    def __init__(self) -> None:
        self._times: dict[str, list[float]] = {}
        self._prices: dict[str, list[float]] = {}

    def record(self, item_id: str, start: datetime, price: float) -> None:
        """See :meth:`PriceHistory.record`."""
        self._record_at(item_id, start.timestamp(), price)

    def record_many(self, entries: Iterable[tuple[str, datetime, float]]) -> None:
        """Record several ``(item_id, start, price)`` at once (the engine's batch write)."""
        # A batch usually shares one epoch start: convert each distinct start once.
        seconds: dict[datetime, float] = {}
        for item_id, start, price in entries:
            t = seconds.get(start)
            if t is None:
                t = seconds[start] = start.timestamp()
            self._record_at(item_id, t, price)

    def _record_at(self, item_id: str, t: float, price: float) -> None:
        times = self._times.get(item_id)
        if times is None:
            self._times[item_id] = [t]
            self._prices[item_id] = [price]
            return
        prices = self._prices[item_id]
        if t >= times[-1]:
            # The usual case, a new epoch after the last one: no search, no shifting.
            times.append(t)
            prices.append(price)
            return
        i = bisect.bisect_right(times, t)
        times.insert(i, t)
        prices.insert(i, price)

    def in_force(self, item_id: str, since: datetime, until: datetime) -> Sequence[float]:
        """See :meth:`PriceHistory.in_force`."""
        times = self._times.get(item_id)
        if not times:
            return ()
        prices = self._prices[item_id]
        lo = bisect.bisect_right(times, since.timestamp())
        hi = bisect.bisect_right(times, until.timestamp())
        # The price recorded last at or before ``since`` was still in force then; prices
        # recorded at the very same instant (other contexts of that epoch) all count.
        start = lo - 1
        if start >= 0:
            t0 = times[start]
            while start > 0 and times[start - 1] == t0:
                start -= 1
        return prices[max(start, 0) : hi]

    def last_and_in_force(
        self, item_id: str, since_s: float, last_until_s: float, until_s: float
    ) -> tuple[float | None, Sequence[float]]:
        """``last(item_id, last_until)`` and ``in_force(item_id, since, until)`` in one lookup.

        The times are POSIX seconds (``datetime.timestamp()``); the engine calls this for
        every item it prices, with the same window for all of them.
        """
        times = self._times.get(item_id)
        if not times:
            return None, ()
        prices = self._prices[item_id]
        i = bisect.bisect_right(times, last_until_s)
        last = prices[i - 1] if i else None
        lo = bisect.bisect_right(times, since_s)
        hi = bisect.bisect_right(times, until_s)
        start = lo - 1
        if start >= 0:
            t0 = times[start]
            while start > 0 and times[start - 1] == t0:
                start -= 1
        return last, prices[max(start, 0) : hi]

    def last(self, item_id: str, until: datetime) -> float | None:
        """See :meth:`PriceHistory.last`."""
        times = self._times.get(item_id)
        if not times:
            return None
        i = bisect.bisect_right(times, until.timestamp())
        return self._prices[item_id][i - 1] if i else None
