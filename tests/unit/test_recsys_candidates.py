"""Filtered retrieval with widening and the full-scan fallback (recsys.candidates)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.candidates import EligibleScan, VectorSource, search_candidates
from recsys.filters import CandidateFilter, CatalogArrays
from recsys.index import VectorIndex
from recsys.types import Filters


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


def test_eligible_scan_matches_brute_force() -> None:
    rng = np.random.default_rng(8)
    n = 300
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n)],
            "category": [f"c{i % 7}/s{i % 3}" for i in range(n)],
            "base_price": rng.uniform(1, 50, n),
        }
    )
    filt = CandidateFilter(CatalogArrays.from_frame(items))
    src = source(n)
    scan = EligibleScan(filt, {"als": src})
    q = rng.normal(size=8).astype(np.float32)
    for filters in (
        Filters(include_categories=("c2", "c5/s1"), max_price=30.0),
        Filters(include_categories=("c3", "c4")),  # adjacent categories: one merged range
        Filters(include_categories=("c1",)),
        Filters(min_price=45.0),
    ):

        def keep(c: np.ndarray, f: Filters = filters) -> np.ndarray:
            return filt.mask(c, f) & (c != 2)

        got = scan.best([(src, q)], filters, keep, 10)
        every = np.arange(n)[keep(np.arange(n))]
        want = every[np.argsort(-(src.item_vectors[every] @ q))[:10]]
        assert sorted(got.tolist()) == sorted(want.tolist())
    assert scan.best([(src, q)], Filters(include_categories=("zz",)), keep, 10).size == 0
