"""Filtered retrieval with widening and the full-scan fallback (recsys.candidates)."""

from __future__ import annotations

import numpy as np

from recsys.candidates import VectorSource, search_candidates
from recsys.index import VectorIndex


def no_scan() -> np.ndarray:
    raise AssertionError("the full scan should not be needed")


def source(n: int = 500, dim: int = 8) -> VectorSource:
    vecs = np.random.default_rng(5).normal(size=(n, dim)).astype(np.float32)
    return VectorSource("als", vecs, VectorIndex.build(vecs))


def test_plain_search_returns_the_nearest() -> None:
    src = source()
    q = src.item_vectors[7]
    got = search_candidates([(src, q)], 5, lambda c: np.ones(c.size, bool), no_scan, 2, 100)
    exact = np.argsort(-(src.item_vectors @ q))[:10]
    assert set(got.tolist()) == set(exact.tolist())


def test_widening_until_enough_pass() -> None:
    src = source()
    q = src.item_vectors[3]
    calls: list[int] = []

    def keep(c: np.ndarray) -> np.ndarray:
        calls.append(c.size)
        return c % 10 == 0

    got = search_candidates([(src, q)], 5, keep, no_scan, 2, 400)
    assert got.size >= 5 and np.all(got % 10 == 0)
    assert calls[0] == 10 and calls == sorted(calls) and len(calls) > 1


def test_small_eligible_share_scans_directly() -> None:
    src = source()
    eligible = np.array([1, 2, 3])
    got = search_candidates(
        [(src, src.item_vectors[0])],
        5,
        lambda c: np.isin(c, eligible),
        lambda: eligible,
        4,
        50,
        fraction=3 / 500,
    )
    assert got.tolist() == [1, 2, 3]


def test_widening_stops_at_max_then_scans() -> None:
    src = source()
    eligible = np.array([4, 400])
    got = search_candidates(
        [(src, src.item_vectors[0])], 2, lambda c: np.isin(c, eligible), lambda: eligible, 2, 40
    )
    assert got.tolist() == [4, 400]


def test_merges_sources_without_duplicates() -> None:
    src = source()
    q = src.item_vectors[9]
    got = search_candidates(
        [(src, q), (src, q)], 4, lambda c: np.ones(c.size, bool), no_scan, 1, 10
    )
    assert got.size == len(set(got.tolist())) == 4
