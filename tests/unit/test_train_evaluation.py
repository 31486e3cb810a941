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
