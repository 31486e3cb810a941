"""The cached blend search measures what a full-catalog evaluation measures."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.hybrid import HybridParams, blend_scores
from training.blend_cache import cache_split, sample_users
from training.evaluation import evaluate, make_split


def _world(seed: int = 0, users: int = 120, items: int = 300):
    rng = np.random.default_rng(seed)
    bought = sp.csr_matrix((rng.random((users, items)) < 0.03).astype(np.float32))
    tu = rng.integers(0, users, 900)
    ti = rng.integers(0, items, 900)
    candidates = np.ones(items, dtype=bool)
    candidates[:10] = False
    a = rng.normal(size=(users, items)).astype(np.float32)
    b = rng.normal(size=(users, items)).astype(np.float32) + np.linspace(0, 2, items)
    rep = bought.toarray() * rng.random((users, items)).astype(np.float32)
    sources = {"a": lambda u: a[u], "b": lambda u: b[u], "rep": lambda u: rep[u]}
    return tu, ti, bought, candidates, sources


def test_cached_recall_equals_full_catalog_recall() -> None:
    tu, ti, bought, candidates, sources = _world()
    for mode in ("all", "novel"):
        split = make_split(tu, ti, bought, candidates, mode)
        cache = cache_split(split, np.arange(split.n_users), sources, depth=60)
        for wa, wb, wr in ((1.0, 0.0, 0.0), (0.6, 0.4, 0.0), (0.2, 0.3, 0.5)):
            params = HybridParams(repeat_weight=wr, discovery_weights={"a": wa, "b": wb})

            def scorer(users: np.ndarray, p: HybridParams = params) -> np.ndarray:
                disc = {"a": sources["a"](users), "b": sources["b"](users)}
                return blend_scores(sources["rep"](users), disc, p)

            full = evaluate(scorer, split, [20])["recall@20"]
            total = wa + wb
            got = cache.recall({"rep": wr, "a": (1 - wr) * wa / total, "b": (1 - wr) * wb / total})
            assert abs(got - full) < 1e-9, (mode, wa, wb, wr)


def test_novel_candidates_exclude_bought_and_unknown_items() -> None:
    tu, ti, bought, candidates, sources = _world(seed=3)
    split = make_split(tu, ti, bought, candidates, "novel")
    cache = cache_split(split, np.arange(split.n_users), sources, depth=40)
    for r, u in enumerate(split.users):
        items = cache.items[r][cache.items[r] >= 0]
        assert len(items) == len(set(items.tolist()))
        assert candidates[items].all()
        assert not (bought[u].toarray().ravel()[items] > 0).any()


def test_user_sample_is_seeded_and_bounded() -> None:
    tu, ti, bought, candidates, _ = _world()
    split = make_split(tu, ti, bought, candidates, "all")
    a = sample_users(split, 30, seed=1)
    assert len(a) == 30 and np.array_equal(a, sample_users(split, 30, seed=1))
    assert np.array_equal(a, np.sort(a))
    assert len(sample_users(split, 0, seed=1)) == split.n_users


def test_a_shared_vector_source_matches_its_tiled_scorer() -> None:
    tu, ti, bought, candidates, sources = _world(seed=5)
    trend = np.random.default_rng(6).random(bought.shape[1]).astype(np.float32)
    split = make_split(tu, ti, bought, candidates, "all")
    rows = np.arange(split.n_users)
    tiled = cache_split(
        split, rows, {"a": sources["a"], "t": lambda u: np.tile(trend, (len(u), 1))}, depth=60
    )
    shared = cache_split(split, rows, {"a": sources["a"], "t": trend}, depth=60)
    for w in (0.0, 0.3, 0.7, 1.0):
        assert shared.recall({"a": 1 - w, "t": w}) == tiled.recall({"a": 1 - w, "t": w})


def test_a_sparse_source_matches_its_dense_scorer() -> None:
    tu, ti, bought, candidates, sources = _world(seed=7)
    rng = np.random.default_rng(8)
    rep = bought.multiply(rng.random(bought.shape)).tocsr().astype(np.float32)
    rep2 = rep.multiply(rep).tocsr()
    for mode in ("all", "novel"):
        split = make_split(tu, ti, bought, candidates, mode)
        rows = np.arange(split.n_users)
        dense = cache_split(
            split,
            rows,
            {"a": sources["a"], "r": lambda u: rep[u].toarray(), "q": lambda u: rep2[u].toarray()},
            depth=60,
        )
        sparse = cache_split(split, rows, {"a": sources["a"], "r": rep, "q": rep2}, depth=60)
        # (Weights that leave most items tied at zero are not compared: ties fill lists
        # arbitrarily, and a blend always has a discovery part.)
        for w in ((1, 0, 0), (0.5, 0.5, 0), (0.3, 0.2, 0.5), (0.1, 0, 0.9), (0.4, -1e6, 0)):
            weights = dict(zip(("a", "r", "q"), w, strict=True))
            assert abs(sparse.recall(weights) - dense.recall(weights)) < 1e-12, (mode, w)
