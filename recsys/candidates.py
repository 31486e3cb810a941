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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsys.filters import CandidateFilter
from recsys.index import VectorIndex
from recsys.types import Filters

_WIDEN = 4
# Category filters come from requests: bound the cache of their row ranges.
_RUN_CACHE_SIZE = 4096


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
    user_candidates:
        ``(n_users, length)`` int32: each trained user's best items by exact inner product
        with their trained vector, best first (:mod:`recsys.user_candidates`); ``None`` when
        the bundle has none.
    """

    name: str
    item_vectors: np.ndarray
    index: VectorIndex
    user_candidates: np.ndarray | None = None
    # ``VectorIndex.size`` asks FAISS through SWIG on every call; the index never changes.
    size: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", self.index.size)

    def scores(self, items: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Inner products of ``query`` with the vectors of ``items`` (float32)."""
        return self.item_vectors[items] @ query

    def catalog_scale(self, query: np.ndarray) -> float:
        """Largest ``|query . v|`` over the catalog: the best item of ``query`` and of ``-query``.

        The scale the offline blend divides this source by; two one-item searches.
        """
        q = np.ascontiguousarray(query, dtype=np.float32)
        best = 0.0
        for sign in (1.0, -1.0):
            _, top = self.index.search(sign * q, 1)
            if top.size:
                best = max(best, float(top[0][0]))
        return best

    def search(self, query: np.ndarray, n: int, user: int | None = None) -> np.ndarray:
        """Item indices of the ``n`` best inner products with ``query`` (no ``-1`` padding).

        When ``query`` is the trained vector of user row ``user`` and the bundle ranked that
        user's items offline, the first ``n`` of that row are the answer (exact, and one
        contiguous read instead of a graph walk). Otherwise the search goes through
        :meth:`recsys.index.VectorIndex.search`, the index's public contract, so that whatever
        the index does to answer stays its own business and the recall it measures is the
        recall served.
        """
        table = self.user_candidates
        if user is not None and table is not None and n <= table.shape[1]:
            return table[user, :n].astype(np.int64)
        ids, _ = self.index.search(query, min(n, self.size))
        found = ids[0]
        return found if found[-1] >= 0 else found[found >= 0]


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
    scan: Callable[[], np.ndarray],
    oversample: int,
    max_candidates: int,
    fraction: float = 1.0,
    prefer_scan: bool = False,
    users: Sequence[int | None] = (),
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
    scan:
        The best eligible items by direct scoring (see :class:`EligibleScan`), called only
        when the index search cannot find enough.
    oversample:
        Initial search size per needed item.
    max_candidates:
        Widest index search before falling back to the full scan.
    fraction:
        Estimated share of the catalog passing the filters. The first search is sized so that
        about ``need * oversample`` candidates survive; when that would exceed
        ``max_candidates`` (or the catalog) the index is skipped and the eligible items are
        scanned directly.
    prefer_scan:
        Skip the index and scan straight away (the caller knows the eligible set is small).
    users:
        Per query, the user row whose trained vector it is (its offline-ranked items can
        answer), or ``None``; empty: none are.

    Returns
    -------
    numpy.ndarray
        int64 unique item indices, unordered by score.
    """
    n_items = min(src.size for src, _ in queries)
    wanted = max(need * oversample, need) / max(fraction, 1e-9)
    if prefer_scan or wanted > min(max_candidates, n_items):
        return scan()
    n = int(min(math.ceil(wanted), n_items))
    rows = list(users) or [None] * len(queries)
    while True:
        cands = _unique_in_order(
            [src.search(q, n, row) for (src, q), row in zip(queries, rows, strict=True)]
        )
        cands = cands[keep(cands)]
        exhausted = n >= n_items
        if cands.size >= need or exhausted:
            return cands
        if n >= max_candidates:
            break
        n = min(n * _WIDEN, max_candidates, n_items)
    return scan()


def _scaled(scores: np.ndarray) -> np.ndarray:
    top = float(np.max(np.abs(scores))) if scores.size else 0.0
    return scores / top if top > 0 else scores


class EligibleScan:
    """Score every eligible item directly, for filters too narrow for the index.

    Item vectors are also kept in category order, so a category filter scores contiguous
    slices (a matrix product on adjacent rows) instead of gathering rows scattered over the
    catalog, which is several times slower.

    Parameters
    ----------
    item_filter:
        The catalog filter (its arrays give the category layout).
    sources:
        Source name -> vectors; one category-ordered copy of each is made here.
    """

    def __init__(self, item_filter: CandidateFilter, sources: Mapping[str, VectorSource]) -> None:
        self.filter = item_filter
        order = item_filter.catalog.items_by_code
        self._grouped = {
            name: np.ascontiguousarray(src.item_vectors[order]) for name, src in sources.items()
        }
        self._run_cache: dict[tuple[str, ...], list[tuple[int, int]]] = {}

    def best(
        self,
        queries: Sequence[tuple[VectorSource, np.ndarray]],
        filters: Filters,
        keep: Callable[[np.ndarray], np.ndarray],
        n: int,
    ) -> np.ndarray:
        """The ``n`` eligible items with the highest score (sources scaled to a top of 1).

        Parameters
        ----------
        queries:
            (source, query) pairs.
        filters:
            The request filters; ``include_categories`` selects the slices to score.
        keep:
            The full eligibility mask (filters, purchases, anchor).
        n:
            How many to return at most.

        Returns
        -------
        numpy.ndarray
            int64 item indices, unordered.
        """
        cat = self.filter.catalog
        if filters.include_categories:
            runs = self._runs(filters.include_categories)
            if not runs:
                return np.empty(0, dtype=np.int64)
            if len(runs) == 1:
                lo, hi = runs[0]
                items = cat.items_by_code[lo:hi]
                parts = [self._grouped[src.name][lo:hi] @ q for src, q in queries]
            else:
                items = np.concatenate([cat.items_by_code[lo:hi] for lo, hi in runs])
                parts = [
                    np.concatenate([self._grouped[src.name][lo:hi] @ q for lo, hi in runs])
                    for src, q in queries
                ]
        else:
            items = np.arange(cat.n_items, dtype=np.int64)
            parts = [src.item_vectors @ q for src, q in queries]
        score = parts[0] if len(parts) == 1 else sum(_scaled(p) for p in parts)
        mask = keep(items)
        items, score = items[mask], np.asarray(score)[mask]
        if items.size > n:
            items = items[np.argpartition(-score, n - 1)[:n]]
        return items

    def _runs(self, prefixes: tuple[str, ...]) -> list[tuple[int, int]]:
        """Row ranges of the category-ordered arrays holding the categories under ``prefixes``.

        Category codes follow the sorted category paths, so the sub-categories of one prefix
        have consecutive codes and their rows are adjacent: adjacent codes are merged into one
        range, and a top-level category costs one matrix product instead of one per
        sub-category. Cached per prefix tuple (bounded, since prefixes come from requests).
        """
        hit = self._run_cache.get(prefixes)
        if hit is not None:
            return hit
        cat = self.filter.catalog
        codes = np.flatnonzero(self.filter.categories_matching(prefixes))
        runs: list[tuple[int, int]] = []
        if codes.size:
            breaks = np.flatnonzero(np.diff(codes) != 1)
            firsts = np.concatenate([[codes[0]], codes[breaks + 1]])
            lasts = np.concatenate([codes[breaks], [codes[-1]]])
            runs = [
                (int(cat.code_indptr[a]), int(cat.code_indptr[b + 1]))
                for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True)
            ]
        if len(self._run_cache) >= _RUN_CACHE_SIZE:
            self._run_cache.clear()
        self._run_cache[prefixes] = runs
        return runs
