"""Offline-ranked candidates per trained user (recsys.user_candidates) and how retrieval uses
them (recsys.candidates.VectorSource.search, search_candidates)."""

from __future__ import annotations

import numpy as np
import pytest

from fairshelf.errors import InvalidArgument, ModelUnavailable
from recsys.candidates import VectorSource, search_candidates
from recsys.index import VectorIndex
from recsys.user_candidates import check_user_candidates, rank_user_candidates


def vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def test_rows_are_the_exact_best_items_best_first() -> None:
    items, users = vectors(300), vectors(5000, seed=1)  # more users than one ranking batch
    table = rank_user_candidates(items, users, 25)
    assert table.dtype == np.int32 and table.shape == (5000, 25)
    scores = users.astype(np.float64) @ items.astype(np.float64).T
    for u in (0, 1, 4095, 4096, 4999):
        truth = np.argsort(-scores[u], kind="stable")[:25]
        np.testing.assert_array_equal(table[u], truth)


def test_length_is_capped_at_the_catalogue() -> None:
    assert rank_user_candidates(vectors(6), vectors(3), 160).shape == (3, 6)
    assert rank_user_candidates(vectors(6), vectors(0), 4).shape == (0, 4)


@pytest.mark.parametrize(
    ("items", "users", "length", "says"),
    [
        (vectors(6), vectors(3), 0, "length must be >= 1"),
        (vectors(6), vectors(3, dim=4), 2, "do not share a dimension"),
        (vectors(6), np.full((2, 8), np.nan, np.float32), 2, "not finite"),
    ],
)
def test_bad_input_is_named(items: np.ndarray, users: np.ndarray, length: int, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        rank_user_candidates(items, users, length)


def test_check_refuses_a_table_of_another_bundle() -> None:
    table = np.array([[0, 1], [2, 3]], dtype=np.int32)
    check_user_candidates(table, 2, 4, "t")
    with pytest.raises(ModelUnavailable, match="t: expected int32 rows for 3 users"):
        check_user_candidates(table, 3, 4, "t")
    with pytest.raises(ModelUnavailable, match=r"outside 0\.\.2"):
        check_user_candidates(table, 2, 3, "t")
    with pytest.raises(ModelUnavailable, match="2 items per user for 1 items"):
        check_user_candidates(table, 2, 1, "t")


class CountingIndex(VectorIndex):
    """A real flat index that counts its searches."""

    searches = 0

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        CountingIndex.searches += 1
        return super().search(queries, k)


def counting_source(items: np.ndarray, table: np.ndarray | None) -> VectorSource:
    flat = VectorIndex.build(items)
    return VectorSource("als", items, CountingIndex(flat.index, flat.kind), table)


def test_a_trained_user_is_answered_from_their_row_without_a_search() -> None:
    items, users = vectors(400), vectors(20, seed=2)
    table = rank_user_candidates(items, users, 40)
    src = counting_source(items, table)
    CountingIndex.searches = 0
    got = src.search(users[3], 30, user=3)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, table[3, :30])
    assert CountingIndex.searches == 0
    # The same vector without its user row, or more items than a row holds: the index answers.
    exact = np.argsort(-(items @ users[3]))
    assert set(src.search(users[3], 30).tolist()) == set(exact[:30].tolist())
    assert set(src.search(users[3], 41, user=3).tolist()) == set(exact[:41].tolist())
    assert CountingIndex.searches == 2


def test_widening_past_the_row_falls_back_to_the_index() -> None:
    items, users = vectors(400), vectors(20, seed=3)
    table = rank_user_candidates(items, users, 16)
    src = counting_source(items, table)
    CountingIndex.searches = 0

    def keep(c: np.ndarray) -> np.ndarray:
        return c % 4 == 0

    got = search_candidates(
        [(src, users[5])],
        8,
        keep,
        lambda: np.empty(0, np.int64),
        2,
        400,
        users=[5],
    )
    # The row's 16 leave fewer than 8 that pass; the x4 widening (64) needs the index.
    exact = np.argsort(-(items @ users[5]))
    assert np.count_nonzero(table[5] % 4 == 0) < 8
    assert CountingIndex.searches == 1
    assert set(got.tolist()) == {int(i) for i in exact[:64] if i % 4 == 0}
