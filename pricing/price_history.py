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
    the prices it decided in one call with a single write.
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
        t = start.timestamp()
        times = self._times.setdefault(item_id, [])
        prices = self._prices.setdefault(item_id, [])
        i = bisect.bisect_right(times, t)
        times.insert(i, t)
        prices.insert(i, price)

    def record_many(self, entries: Iterable[tuple[str, datetime, float]]) -> None:
        """Record several ``(item_id, start, price)`` at once (the engine's batch write)."""
        for item_id, start, price in entries:
            self.record(item_id, start, price)

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

    def last(self, item_id: str, until: datetime) -> float | None:
        """See :meth:`PriceHistory.last`."""
        times = self._times.get(item_id)
        if not times:
            return None
        i = bisect.bisect_right(times, until.timestamp())
        return self._prices[item_id][i - 1] if i else None
