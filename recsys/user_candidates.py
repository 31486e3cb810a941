"""Each trained shopper's best items, ranked offline by exact search (the candidate cache).

A shopper the bundle knows and who has logged nothing since training is served from their
trained vector, so their nearest items are fixed until the next bundle. The trainer ranks them
once, exactly, and stores the first ``length`` item indices per shopper; serving then slices
that row instead of walking the HNSW graph. On the serving benchmark's host a graph search of
the 100,000-item catalogue touches a few thousand scattered vectors and costs several times
its warm CPU time when the process has waited a few milliseconds for the request (its caches
gone cold); a row of this table is one contiguous read. The rows are exact (recall 1.0 against
brute force), where the graph search is about 0.99.

A retriever whose query for the shopper is not their trained vector (the ALS fold-in of events
logged since training, or the session user tower) still goes through the index, as does a
request whose filters need more candidates than a row holds. Bundles are immutable once
published, so the table is memory-mapped after its hash is checked.
"""

from __future__ import annotations

import numpy as np

from fairshelf.errors import InvalidArgument, ModelUnavailable
from recsys.index import exact_top

# Users whose first item is checked against a brute-force search when a table is loaded.
_SPOT_CHECKS = 8


def rank_user_candidates(
    item_vectors: np.ndarray, user_vectors: np.ndarray, length: int
) -> np.ndarray:
    """The ``length`` items with the highest inner product, per user, best first.

    Parameters
    ----------
    item_vectors:
        ``(n_items, dim)`` item vectors.
    user_vectors:
        ``(n_users, dim)`` user vectors (the trained ones).
    length:
        Items kept per user; capped at ``n_items``.

    Returns
    -------
    numpy.ndarray
        ``(n_users, min(length, n_items))`` int32 item indices, best first.

    Raises
    ------
    InvalidArgument
        If ``length`` < 1, the dimensions differ, or a vector is not finite.
    """
    if length < 1:
        raise InvalidArgument(f"user candidate length must be >= 1, got {length}", field="length")
    items = np.ascontiguousarray(item_vectors, dtype=np.float32)
    users = np.ascontiguousarray(user_vectors, dtype=np.float32)
    if items.ndim != 2 or users.ndim != 2 or items.shape[1] != users.shape[1]:
        raise InvalidArgument(
            f"item vectors {items.shape} and user vectors {users.shape} do not share a dimension"
        )
    if not (np.isfinite(items).all() and np.isfinite(users).all()):
        raise InvalidArgument("item or user vectors hold a value that is not finite")
    keep = min(length, items.shape[0])
    if keep == 0 or users.shape[0] == 0:
        return np.empty((users.shape[0], keep), dtype=np.int32)
    return exact_top(items, users, keep).astype(np.int32)


def check_user_candidates(
    table: np.ndarray,
    n_users: int,
    n_items: int,
    name: str,
    vectors: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Refuse a candidate table that cannot belong to this bundle.

    Parameters
    ----------
    table:
        The loaded table.
    n_users, n_items:
        The bundle's sizes.
    name:
        What to call the table in an error.
    vectors:
        ``(item_vectors, user_vectors)`` it was ranked from: for a few users, spread over the
        table, the first item must score as high as the best item by brute force (a table
        from another training run of the same shape fails this).

    Raises
    ------
    ModelUnavailable
        If the shape, dtype, an item index or a spot-checked ranking is wrong.
    """
    if table.ndim != 2 or table.shape[0] != n_users or table.dtype != np.int32:
        raise ModelUnavailable(
            f"{name}: expected int32 rows for {n_users} users, got {table.dtype} {table.shape}"
        )
    if table.shape[1] > n_items or table.shape[1] < 1:
        raise ModelUnavailable(f"{name}: {table.shape[1]} items per user for {n_items} items")
    if table.size and (int(table.min()) < 0 or int(table.max()) >= n_items):
        raise ModelUnavailable(f"{name}: an item index is outside 0..{n_items - 1}")
    if vectors is None or n_users == 0:
        return
    items, users = vectors
    rows = np.unique(np.linspace(0, n_users - 1, _SPOT_CHECKS).astype(np.int64))
    scores = np.asarray(users[rows], np.float64) @ np.asarray(items, np.float64).T
    first = scores[np.arange(rows.size), table[rows, 0]]
    best = scores.max(axis=1)
    if np.any(first < best - 1e-4 * np.maximum(1.0, np.abs(best))):
        raise ModelUnavailable(f"{name}: rows are not these users' best items")
