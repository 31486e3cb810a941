"""Candidate retrieval from item-vector indices, with filters applied during the search.

FAISS returns the nearest items regardless of business filters, so a narrow filter (one small
category, a tight price band) can leave fewer than ``k`` survivors. :func:`search_candidates`
therefore fetches ``need * oversample``, filters, widens the search x4 while short (up to
``max_candidates``), and as a last resort scores every item that passes the filters with one
matrix product. The list is never short when the catalog has enough eligible items, and the
common case costs one small index search.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recsys.index import VectorIndex

_WIDEN = 4


@dataclass(frozen=True)
class VectorSource:
    """One retriever's item vectors and the index built over them.

    Parameters
    ----------
    name:
        Discovery source name as used by :class:`recsys.hybrid.HybridParams` (``"als"``,
        ``"two_tower"``).
    item_vectors:
        ``(n_items, dim)`` float32, C-contiguous.
    index:
        Inner-product index over ``item_vectors``.
    """

    name: str
    item_vectors: np.ndarray
    index: VectorIndex

    def scores(self, items: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Inner products of ``query`` with the vectors of ``items`` (float32)."""
        return self.item_vectors[items] @ query

    def search(self, query: np.ndarray, n: int) -> np.ndarray:
        """Item indices of the ``n`` best inner products with ``query`` (no ``-1`` padding).

        Calls FAISS directly: the query is built by the recommender (float32, right length),
        so :meth:`recsys.index.VectorIndex.search`'s validation would only add latency.
        """
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        _, ids = self.index.index.search(q, min(n, self.index.size))
        found = ids[0]
        return found[found >= 0].astype(np.int64, copy=False)


def _unique_in_order(parts: Sequence[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    merged = np.concatenate(parts)
    _, first = np.unique(merged, return_index=True)
    return merged[np.sort(first)]


def search_candidates(
    queries: Sequence[tuple[VectorSource, np.ndarray]],
    need: int,
    keep: Callable[[np.ndarray], np.ndarray],
    allowed_items: Callable[[], np.ndarray],
    oversample: int,
    max_candidates: int,
    fraction: float = 1.0,
) -> np.ndarray:
    """Item indices near the queries that pass ``keep``; at least ``need`` when possible.

    Parameters
    ----------
    queries:
        (source, query vector) pairs; candidates of all sources are merged.
    need:
        Number of candidates wanted after filtering.
    keep:
        Vectorised filter: item indices -> boolean mask.
    allowed_items:
        Every item passing the filters (called only for the full-scan fallback).
    oversample:
        Initial search size per needed item.
    max_candidates:
        Widest index search before falling back to the full scan.
    fraction:
        Estimated share of the catalog passing the filters. The first search is sized so that
        about ``need * oversample`` candidates survive; when that would exceed
        ``max_candidates`` (or the catalog) the index is skipped and the eligible items are
        scanned directly.

    Returns
    -------
    numpy.ndarray
        int64 unique item indices, unordered by score. When the full scan is used the result
        is every eligible item; callers score and cut it.
    """
    n_items = min(src.index.size for src, _ in queries)
    wanted = max(need * oversample, need) / max(fraction, 1e-9)
    if wanted > min(max_candidates, n_items):
        return allowed_items()
    n = int(min(math.ceil(wanted), n_items))
    while True:
        found = []
        for src, q in queries:
            found.append(src.search(q, n))
        cands = _unique_in_order(found)
        cands = cands[keep(cands)]
        exhausted = n >= n_items
        if cands.size >= need or exhausted:
            return cands
        if n >= max_candidates:
            break
        n = min(n * _WIDEN, max_candidates, n_items)
    return allowed_items()
