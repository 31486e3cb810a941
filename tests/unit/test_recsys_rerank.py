"""Boosts, normalisation and category diversity (recsys.rerank)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.filters import CatalogArrays
from recsys.rerank import boost_array, diversify, normalise


def test_normalise() -> None:
    assert normalise(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert normalise(np.array([7.0, 7.0])).tolist() == [1.0, 1.0]
    assert normalise(np.array([])).size == 0


def test_no_diversity_keeps_score_order() -> None:
    s = np.array([0.1, 0.9, 0.5, 0.7])
    assert diversify(s, np.zeros(4, np.int32), 3, 0.0).tolist() == [1, 3, 2]


def test_diversity_interleaves_categories() -> None:
    s = np.array([1.0, 0.95, 0.9, 0.85, 0.5, 0.45])
    g = np.array([0, 0, 0, 0, 1, 1])
    assert diversify(s, g, 4, 0.0).tolist() == [0, 1, 2, 3]
    # lambda 0.3: the second of group 0 is worth 0.65 > 0.5, the third only 0.9 - 0.6 = 0.3.
    assert diversify(s, g, 4, 0.3).tolist() == [0, 1, 4, 2]


def test_empty_candidates() -> None:
    empty = np.array([], dtype=np.float64)
    assert diversify(empty, np.array([], dtype=np.int32), 5, 0.3, cap=2).size == 0


def test_cap_limits_group_until_exhausted() -> None:
    s = np.array([1.0, 0.9, 0.8, 0.1])
    g = np.array([0, 0, 0, 1])
    assert diversify(s, g, 3, 0.0, cap=1).tolist() == [0, 3, 1]
    assert diversify(s, g, 4, 0.0, cap=1).tolist() == [0, 3, 1, 2]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=40),
    st.integers(1, 50),
    st.floats(0, 2),
    st.one_of(st.none(), st.integers(1, 5)),
    st.integers(0, 2**31 - 1),
)
def test_diversify_returns_distinct_positions(
    scores: list[float], k: int, lam: float, cap: int | None, seed: int
) -> None:
    s = np.array(scores)
    g = np.random.default_rng(seed).integers(0, 4, size=s.size)
    out = diversify(s, g, k, lam, cap)
    assert len(out) == min(k, s.size) == len(set(out.tolist()))
    assert out[0] == int(np.argmax(s))  # the best item always leads


def _greedy_reference(
    scores: np.ndarray, groups: np.ndarray, k: int, lam: float, cap: int | None
) -> list[int]:
    """The definition of the re-ranking, one pick at a time over every remaining candidate."""
    rank = np.empty(scores.size, dtype=np.int64)
    rank[np.argsort(-scores, kind="stable")] = np.arange(scores.size)
    left = set(range(scores.size))
    taken: dict[int, int] = {}
    chosen: list[int] = []
    while left and len(chosen) < min(k, scores.size):
        open_ = [i for i in left if cap is None or taken.get(int(groups[i]), 0) < cap]
        if not open_:
            # Every group capped or empty: the rest in score order.
            chosen.extend(sorted(left, key=lambda i: rank[i])[: k - len(chosen)])
            break
        best = min(
            open_,
            key=lambda i: (-(scores[i] - lam * taken.get(int(groups[i]), 0)), rank[i]),
        )
        chosen.append(best)
        left.remove(best)
        taken[int(groups[best])] = taken.get(int(groups[best]), 0) + 1
    return chosen


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) | st.floats(0, 1.5), max_size=60),
    st.integers(1, 70),
    st.sampled_from([0.0, 0.1, 0.25, 0.3, 1.0]) | st.floats(0, 2),
    st.one_of(st.none(), st.integers(1, 5)),
    st.integers(0, 2**31 - 1),
)
def test_diversify_equals_greedy_definition(
    scores: list[float], k: int, lam: float, cap: int | None, seed: int
) -> None:
    # Coarse scores and lambdas make ties between items and between penalised values common.
    s = np.array(scores, dtype=np.float64)
    g = np.random.default_rng(seed).integers(0, 5, size=s.size).astype(np.int32)
    assert diversify(s, g, k, lam, cap).tolist() == _greedy_reference(s, g, k, lam, cap)


def test_boost_array() -> None:
    cat = CatalogArrays.from_frame(
        pd.DataFrame({"item_id": ["a", "b", "c"], "category": ["x/y", "x", "z"]})
    )
    assert boost_array(cat, {}, {}) is None
    assert boost_array(cat, {"missing": 1.0}, {}) is None
    b = boost_array(cat, {"c": 0.5}, {"x": 0.2, "x/y": 0.1})
    assert b is not None
    np.testing.assert_allclose(b, [0.3, 0.2, 0.5])
