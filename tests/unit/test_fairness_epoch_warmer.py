"""Tests of pricing.fairness.epoch_warmer: the warm-up runs just after each epoch starts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pricing.epochs import EpochClock
from pricing.fairness.epoch_warmer import EpochWarmer

CLOCK = EpochClock(timedelta(minutes=1))
BOUNDARY = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


def _clock_from(start: datetime) -> Callable[[], datetime]:
    """A wall clock that reads ``start`` now and runs at real speed."""
    t0 = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - t0)


def test_waits_until_just_after_the_next_boundary() -> None:
    warmer = EpochWarmer(CLOCK, lambda now: None, now=lambda: BOUNDARY - timedelta(seconds=20))
    assert 20.0 < warmer.seconds_to_next_epoch() < 20.5
    on_boundary = EpochWarmer(CLOCK, lambda now: None, now=lambda: BOUNDARY)
    assert 60.0 < on_boundary.seconds_to_next_epoch() < 60.5


def test_warms_the_new_epoch_and_survives_a_failure() -> None:
    now = _clock_from(BOUNDARY - timedelta(seconds=0.2))
    seen: list[datetime] = []
    fired = threading.Event()

    def warm(at: datetime) -> None:
        seen.append(at)
        fired.set()
        raise RuntimeError("store down")  # logged; the timer keeps going

    warmer = EpochWarmer(CLOCK, warm, now=now).start()
    try:
        assert fired.wait(5.0), "warm-up did not run after the boundary"
    finally:
        warmer.stop()
    assert len(seen) == 1
    assert CLOCK.index(seen[0]) == CLOCK.index(BOUNDARY)
    assert seen[0] - BOUNDARY < timedelta(seconds=2)


def test_stop_returns_promptly_before_any_boundary() -> None:
    warmer = EpochWarmer(CLOCK, lambda now: None, now=lambda: BOUNDARY).start()
    t0 = time.monotonic()
    warmer.stop()
    assert time.monotonic() - t0 < 2.0
