"""The evaluation's top-k: same lists as a full sort, masks honoured, blocks sized."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from training.ranking import BLOCK_ELEMENTS, best_unordered, rows_per_block, top_k_rows


def _full_sort(scores: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
    s = np.where(exclude, -np.inf, scores)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def test_top_k_rows_equals_a_full_sort_with_both_masks() -> None:
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((50, 300)).astype(np.float32)
    allowed = rng.random(300) > 0.2
    drop = sp.random(50, 300, density=0.05, format="csr", random_state=1, dtype=np.float32)
    drop.data[:] = 1.0
    exclude = ~allowed[None, :] | (drop.toarray() > 0)
    expected = _full_sort(scores, 20, exclude)
    got = top_k_rows(scores.copy(), 20, allowed, drop)
    assert got.dtype == np.int64 and got.shape == (50, 20)
    np.testing.assert_array_equal(got, expected)
    assert not exclude[np.arange(50)[:, None], got].any()


def test_zero_entries_of_the_drop_matrix_do_not_drop() -> None:
    scores = np.array([[3.0, 2.0, 1.0]], dtype=np.float32)
    drop = sp.csr_matrix((np.array([0.0, 1.0]), np.array([0, 1]), np.array([0, 2])), shape=(1, 3))
    np.testing.assert_array_equal(top_k_rows(scores, 2, None, drop), [[0, 2]])


def test_k_is_capped_and_empty_blocks_are_fine() -> None:
    scores = np.array([[0.1, 0.9]], dtype=np.float32)
    np.testing.assert_array_equal(top_k_rows(scores, 5), [[1, 0]])
    assert top_k_rows(np.zeros((0, 4), dtype=np.float32), 3).shape == (0, 3)


def test_best_unordered_holds_the_largest_set() -> None:
    rng = np.random.default_rng(2)
    block = rng.standard_normal((10, 100)).astype(np.float32)
    before = block.copy()
    got = best_unordered(block, 7)
    want = np.argsort(-block, axis=1)[:, :7]
    assert all(set(g) == set(w) for g, w in zip(got.tolist(), want.tolist(), strict=True))
    np.testing.assert_array_equal(block, before)


def test_blocks_stay_under_the_element_budget() -> None:
    assert rows_per_block(50_000) * 50_000 <= BLOCK_ELEMENTS
    assert rows_per_block(100) == 1024
    assert rows_per_block(10**9) == 16


def test_idle_cores_is_between_one_and_the_cores_this_process_may_use() -> None:
    import os

    from training.ranking import idle_cores, map_blocks

    n = idle_cores()
    assert 1 <= n <= len(os.sched_getaffinity(0))
    # Results come back in order whatever the number of threads.
    assert map_blocks(lambda x: x * x, list(range(20)), workers=2) == [x * x for x in range(20)]
    assert map_blocks(lambda x: x * x, list(range(20))) == [x * x for x in range(20)]
