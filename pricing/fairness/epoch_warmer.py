"""A timer that pins fair prices just after each price epoch starts.

Without it the first shoppers of an epoch wait while the clean room decides the items they ask
for (a hand-off to the clean-room thread and the engine's work for each item). The warmer does
that work for the items quoted in the epoch before (``FairQuoteService.warm_demanded``), in the
default public context (no competitor prices, no promotions), right after the epoch begins and
off every request's path. It changes no price:
the same clean room computes the same shopper-free decision a request would have triggered,
and it is pinned the same way. Requests that carry other public context (a competitor price,
a promotion) still have their items decided on first use.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pricing.epochs import EpochClock

_log = logging.getLogger(__name__)

# Fire a little after the boundary, so that the warm-up's time is surely in the new epoch.
_AFTER_START_S = 0.05


class EpochWarmer:
    """Calls ``warm(now)`` once right after each epoch boundary, on its own daemon thread.

    Parameters
    ----------
    clock:
        The price-epoch clock.
    warm:
        What to run, given the current time (``FairQuoteService.warm``); its errors are
        logged and the next epoch is tried again.
    now:
        The wall clock (UTC); replaceable for tests.
    """

    def __init__(
        self,
        clock: EpochClock,
        warm: Callable[[datetime], object],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._clock = clock
        self._warm = warm
        self._now = now
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="fairshelf-epoch-warmer", daemon=True
        )

    def start(self) -> EpochWarmer:
        """Start the timer thread; returns self."""
        self._thread.start()
        return self

    def seconds_to_next_epoch(self) -> float:
        """Seconds from now until just after the next epoch starts."""
        now = self._now()
        start = self._clock.start(self._clock.index(now) + 1)
        return max((start - now).total_seconds(), 0.0) + _AFTER_START_S

    def stop(self) -> None:
        """Stop the timer thread (an ongoing warm-up finishes first)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30.0)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds_to_next_epoch()):
            t0 = time.perf_counter()
            try:
                self._warm(self._now())
            except Exception:
                _log.exception("epoch warm-up failed; requests will price on first use")
                continue
            _log.debug("epoch warm-up took %.3f s", time.perf_counter() - t0)
