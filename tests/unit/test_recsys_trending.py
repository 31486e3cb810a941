"""Trending lists by context category (recsys.trending)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.trending import TrendingLists


def lists() -> TrendingLists:
    pop = pd.DataFrame(
        {
            "scope": ["*", "*", "*", "home", "home", "home/kitchen"],
            "rank": [0, 1, 2, 0, 1, 0],
            "item_index": [5, 1, 2, 1, 3, 3],
            "score": [9.0, 8.0, 7.0, 8.0, 1.0, 1.0],
        }
    )
    trend = np.array([0.0, 8.0, 7.0, 1.0, 0.5, 9.0, np.nan])
    return TrendingLists(pop, trend)


def keep_all(items: np.ndarray) -> np.ndarray:
    return np.ones(items.size, dtype=bool)


def test_scope_resolution() -> None:
    t = lists()
    assert t.scope_for("home/kitchen/mugs") == "home/kitchen"
    assert t.scope_for("home/garden") == "home"
    assert t.scope_for("toys") == "*"
    assert t.scope_for(None) == "*"


def test_chain_from_category_to_global_to_all() -> None:
    t = lists()
    got = t.candidates("home/garden", 10, keep_all)
    assert got.scope == "home"
    assert got.items.tolist() == [1, 3, 5, 2, 4, 0, 6]
    assert got.in_scope.tolist() == [True, True, False, False, False, False, False]


def test_filter_and_early_stop() -> None:
    t = lists()
    got = t.candidates(None, 2, lambda items: items != 5)
    assert got.items.tolist()[:2] == [1, 2]
    assert not got.in_scope.any()
    assert t.candidates("toys", 3, lambda items: items < 0).items.size == 0
