"""training.evaluation: the reference protocol on hand-checked lists."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from training.evaluation import evaluate, make_split, metrics_from_lists, ranked_lists


def _split(mode: str = "all"):  # type: ignore[no-untyped-def]
    bought = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]], dtype=np.float32))
    # user 0 buys items 0 (again) and 2; user 1 buys item 5 (again) only
    return make_split(
        np.array([0, 0, 0, 1]),
        np.array([0, 2, 2, 5]),
        bought,
        np.ones(6, dtype=bool),
        mode,  # type: ignore[arg-type]
    )


def test_recall_ndcg_hit_map_by_hand() -> None:
    split = _split()
    lists = np.array([[2, 3, 0], [1, 3, 4]])
    m = metrics_from_lists(lists, split, [1, 3])
    assert m["recall@1"] == pytest.approx((1 / 1 + 0) / 2)
    assert m["recall@3"] == pytest.approx((2 / 2 + 0) / 2)
    disc = 1 / np.log2(np.arange(2, 5))
    assert m["ndcg@3"] == pytest.approx(((disc[0] + disc[2]) / disc[:2].sum() + 0) / 2)
    assert m["hit_rate@3"] == pytest.approx(0.5)
    assert m["map@3"] == pytest.approx(((1 / 1 + 2 / 3) / 2 + 0) / 2)
    assert m["coverage@3"] == pytest.approx(5 / 6)


def test_novel_mode_drops_rebuys_and_filters_lists() -> None:
    split = _split("novel")
    assert split.users.tolist() == [0]  # user 1 only re-bought
    scores = np.array([[9.0, 0.0, 1.0, 0.5, 0.0, 0.0]])
    lists = ranked_lists(lambda u: np.repeat(scores, len(u), axis=0), split, 2)
    assert lists.tolist() == [[2, 3]]  # item 0 was bought before: filtered
    assert evaluate(lambda u: np.repeat(scores, len(u), axis=0), split, [1])["recall@1"] == 1.0


def test_popularity_percentile_and_segments_by_hand() -> None:
    # Item 0 bought by 3 shoppers, item 1 by 2, item 2 by 1, item 3 by nobody.
    bought = sp.csr_matrix(np.array([[1, 1, 1, 0], [2, 1, 0, 0], [3, 0, 0, 0]], dtype=np.float32))
    split = make_split(
        np.array([0, 1, 2]), np.array([3, 3, 3]), bought, np.ones(4, dtype=bool), "all"
    )
    lists = np.array([[0, 3], [3, 1], [2, 0]])
    m = metrics_from_lists(lists, split, [1, 2])
    pct = {0: 3 / 4, 1: 2 / 4, 2: 1 / 4, 3: 0.0}
    assert m["pop_percentile@1"] == pytest.approx((pct[0] + pct[3] + pct[2]) / 3)
    # Purchase sessions before the cut: 3 (occasional), 3 (occasional), 3 (occasional).
    assert m["users:occasional"] == 3 and m["users:new"] == 0 and m["users:frequent"] == 0
    assert m["recall@2:occasional"] == pytest.approx(m["recall@2"])
    assert "recall@2:new" not in m


def test_item_repeat_rate_by_hand() -> None:
    from training.fit import item_repeat_rate

    # Item 0: two buyers, one of them in two sessions; item 1: one buyer, once; item 2: none.
    counts = sp.csr_matrix(np.array([[2, 1, 0], [1, 0, 0]], dtype=np.float32))
    rate = item_repeat_rate(counts)
    assert rate.tolist() == pytest.approx([(1 + 1) / (2 + 2), (0 + 1) / (1 + 2), 1 / 2])


def test_scoring_both_modes_at_once_equals_each_alone() -> None:
    from training.evaluation import evaluate_modes

    rng = np.random.default_rng(3)
    bought = sp.csr_matrix((rng.random((50, 40)) < 0.1).astype(np.float32))
    tu, ti = rng.integers(0, 50, 300), rng.integers(0, 40, 300)
    cands = np.ones(40, dtype=bool)
    cands[:3] = False
    splits = {m: make_split(tu, ti, bought, cands, m) for m in ("all", "novel")}
    table = rng.normal(size=(50, 40)).astype(np.float32)
    both = evaluate_modes(lambda u: table[u], splits, [5, 10], batch=7)
    for mode, split in splits.items():
        assert both[mode] == evaluate(lambda u: table[u], split, [5, 10])


@pytest.mark.parametrize("density", [0.1, 0.6])
def test_novel_lists_read_off_the_all_ranking_equal_their_own_ranking(density: float) -> None:
    # 0.1: every block reads novel lists off one deeper ranking; 0.6: heavy buyers make a
    # block too deep for that, and it ranks its novel lists apart.
    from training.evaluation import _shares_one_ranking, evaluate_modes

    rng = np.random.default_rng(4)
    bought = sp.csr_matrix((rng.random((60, 80)) < density).astype(np.float32))
    tu, ti = rng.integers(0, 60, 500), rng.integers(0, 80, 500)
    cands = rng.random(80) > 0.1
    splits = {m: make_split(tu, ti, bought, cands, m) for m in ("all", "novel")}
    assert _shares_one_ranking(splits)
    table = rng.normal(size=(60, 80)).astype(np.float32)
    both = evaluate_modes(lambda u: table[u], splits, [5, 8], batch=9)
    for mode, split in splits.items():
        assert both[mode] == evaluate(lambda u: table[u], split, [5, 8])
