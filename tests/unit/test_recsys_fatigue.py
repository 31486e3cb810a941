"""Impression fatigue (recsys.fatigue)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from recsys.fatigue import fatigue_penalties, unengaged_impressions
from recsys.types import RecentEvent

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def ev(item: str, kind: str, minutes: int) -> RecentEvent:
    return RecentEvent(item, kind, T0 + timedelta(minutes=minutes))


def test_engagement_forgives_earlier_impressions() -> None:
    events = [
        ev("a", "impression", 1),
        ev("a", "impression", 2),
        ev("a", "click", 3),
        ev("a", "impression", 4),
        ev("b", "impression", 1),
        ev("b", "impression", 5),
        ev("b", "impression", 9),
        ev("c", "impression", 7),
        ev("c", "purchase", 7),
    ]
    assert unengaged_impressions(list(reversed(events))) == {"a": 1, "b": 3}


def test_penalties_grow_past_threshold() -> None:
    positions = {"a": 0, "b": 1, "c": 2}
    counts = {"a": 1, "b": 3, "c": 5, "zz": 9}
    pen = fatigue_penalties(np.array([2, 0, 1, 7]), positions, counts, threshold=3, penalty=0.1)
    assert pen is not None
    np.testing.assert_allclose(pen, [0.3, 0.0, 0.1, 0.0])
    assert fatigue_penalties(np.array([0]), positions, {"a": 2}, 3, 0.1) is None
    assert fatigue_penalties(np.array([1]), positions, counts, 3, 0.0) is None
