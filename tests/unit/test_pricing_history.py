"""Tests of pricing.price_history: which prices count as in force over a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pricing.price_history import InMemoryPriceHistory

T = datetime(2026, 2, 1, tzinfo=UTC)
H = timedelta(hours=1)


def test_in_force_includes_the_price_standing_at_the_window_start() -> None:
    h = InMemoryPriceHistory()
    h.record_many([("A", T, 10.0), ("A", T + 5 * H, 11.0), ("A", T + 30 * H, 12.0)])
    # At T+30h the window starts at T+6h, when 11.0 (set at T+5h) was in force.
    assert list(h.in_force("A", T + 6 * H, T + 30 * H)) == [11.0, 12.0]
    assert list(h.in_force("A", T + 5 * H, T + 5 * H)) == [11.0]
    assert list(h.in_force("A", T - 2 * H, T - H)) == []
    assert h.last("A", T + 29 * H) == 11.0 and h.last("A", T - H) is None
    assert list(h.in_force("B", T, T + H)) == [] and h.last("B", T) is None


def test_prices_of_several_contexts_in_one_epoch_all_count() -> None:
    h = InMemoryPriceHistory()
    h.record("A", T, 10.0)
    h.record("A", T, 10.5)  # same epoch, another public context (e.g. another region)
    h.record("A", T + 2 * H, 11.0)
    assert sorted(h.in_force("A", T + H, T + 2 * H)) == [10.0, 10.5, 11.0]
    # Recorded out of order, read in time order.
    h.record("A", T - H, 9.0)
    assert list(h.in_force("A", T - H, T - H)) == [9.0]


def test_combined_lookup_agrees_with_last_and_in_force() -> None:
    # The engine's one-call lookup must answer exactly what last() and in_force() answer,
    # including out-of-order records and several prices at one instant.
    h = InMemoryPriceHistory()
    h.record_many([("A", T + 3 * H, 12.0), ("A", T, 10.0), ("A", T, 10.5), ("A", T + H, 11.0)])
    h.record("A", T + 30 * H, 13.0)
    for start in [T - H, T, T + H, T + 2 * H, T + 25 * H, T + 30 * H, T + 31 * H]:
        since, before = start - 24 * H, start - timedelta(microseconds=1)
        for item in ("A", "B"):
            got = h.last_and_in_force(
                item, since.timestamp(), before.timestamp(), start.timestamp()
            )
            assert got[0] == h.last(item, before)
            assert list(got[1]) == list(h.in_force(item, since, start))
