"""Candidate filters over precomputed item arrays (SPEC §5: bought, out of stock, category,
price range).

The catalog table of a bundle is a pandas frame; the request path must not touch pandas. At
load, :class:`CatalogArrays` turns it into flat numpy arrays (category codes, prices, stock
mask) and :class:`CandidateFilter` answers "which of these candidate indices may be shown" with
a handful of vectorised gathers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.schema import CATEGORY_SEPARATOR
from recsys.types import Filters

# Category filters come from requests; an unbounded cache of their lookups would let a caller
# grow memory without limit.
_PREFIX_CACHE_SIZE = 4096
# Per-filter-set item masks are catalog-sized (100 kB for 100k items): keep fewer of them.
_MASK_CACHE_SIZE = 64


def top_level(category: str) -> str:
    """First segment of a category path (``"home/kitchen"`` -> ``"home"``)."""
    return category.split(CATEGORY_SEPARATOR, 1)[0]


def is_under(category: str, prefix: str) -> bool:
    """Whether ``category`` equals ``prefix`` or lies below it in the category tree."""
    p = prefix.rstrip(CATEGORY_SEPARATOR)
    return category == p or category.startswith(p + CATEGORY_SEPARATOR)


def contains(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``np.isin(queries, sorted_values)`` for an ascending ``sorted_values``, by binary search.

    A shopper's purchases are a short sorted array; a binary search per candidate avoids the
    sort that ``np.isin`` performs on every call.
    """
    if sorted_values.size == 0:
        return np.zeros(queries.shape[0], dtype=bool)
    pos = np.searchsorted(sorted_values, queries)
    pos = np.minimum(pos, sorted_values.size - 1)
    return sorted_values[pos] == queries


@dataclass(frozen=True)
class CatalogArrays:
    """Item attributes as flat arrays; row ``i`` is item index ``i``.

    Parameters
    ----------
    item_ids:
        ``(n_items,)`` object array of item ids.
    categories:
        Distinct category paths; ``category_codes[i]`` indexes into it.
    category_codes:
        ``(n_items,)`` int32.
    top_categories:
        Distinct top-level categories; ``top_codes[i]`` indexes into it (used for diversity).
    top_codes:
        ``(n_items,)`` int32.
    prices:
        ``(n_items,)`` float64 base prices (NaN when unknown; such items fail price filters).
    in_stock:
        ``(n_items,)`` bool; unknown stock counts as in stock.
    code_indptr, items_by_code:
        Items of each category code as CSR (items of code ``c`` are
        ``items_by_code[code_indptr[c]:code_indptr[c + 1]]``, ascending).
    sorted_prices:
        Known prices, ascending (to count items in a price range by binary search).
    """

    item_ids: np.ndarray
    categories: tuple[str, ...]
    category_codes: np.ndarray
    top_categories: tuple[str, ...]
    top_codes: np.ndarray
    prices: np.ndarray
    in_stock: np.ndarray
    code_indptr: np.ndarray
    items_by_code: np.ndarray
    sorted_prices: np.ndarray

    @property
    def n_items(self) -> int:
        """Number of items."""
        return int(self.item_ids.shape[0])

    @classmethod
    def from_frame(cls, items: pd.DataFrame) -> CatalogArrays:
        """Build the arrays from a bundle's ``items`` table (columns of ``docs/bundle.md``).

        Parameters
        ----------
        items:
            ``item_id``, ``category``; optional ``base_price`` and ``stock``.

        Returns
        -------
        CatalogArrays
        """
        n = len(items)
        cat = items["category"].astype("string").fillna("").to_numpy(dtype=object)
        cats, codes = np.unique(cat.astype(str), return_inverse=True)
        tops = np.array([top_level(c) for c in cats], dtype=object)
        top_names, top_of_cat = np.unique(tops.astype(str), return_inverse=True)
        if "base_price" in items.columns:
            prices = pd.to_numeric(items["base_price"], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        else:
            prices = np.full(n, np.nan)
        if "stock" in items.columns:
            stock = pd.to_numeric(items["stock"], errors="coerce")
            in_stock = (stock.isna() | (stock > 0)).to_numpy(dtype=bool)
        else:
            in_stock = np.ones(n, dtype=bool)
        codes32 = codes.astype(np.int32)
        counts = np.bincount(codes32, minlength=len(cats))
        return cls(
            item_ids=items["item_id"].astype(str).to_numpy(dtype=object),
            categories=tuple(str(c) for c in cats),
            category_codes=codes32,
            top_categories=tuple(str(c) for c in top_names),
            top_codes=top_of_cat.astype(np.int32)[codes32],
            prices=prices,
            in_stock=in_stock,
            code_indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            items_by_code=np.argsort(codes32, kind="stable").astype(np.int64),
            sorted_prices=np.sort(prices[~np.isnan(prices)]),
        )


class CandidateFilter:
    """Vectorised filtering of candidate item indices.

    Parameters
    ----------
    catalog:
        The bundle's item arrays.
    """

    def __init__(self, catalog: CatalogArrays) -> None:
        self.catalog = catalog
        self._prefix_cache: dict[tuple[str, ...], np.ndarray] = {}
        self._fraction_cache: dict[Filters, float] = {}
        self._mask_cache: dict[tuple[object, ...], np.ndarray] = {}
        self._in_stock_share = float(catalog.in_stock.mean()) if catalog.n_items else 1.0

    def categories_matching(self, prefixes: tuple[str, ...]) -> np.ndarray:
        """Boolean mask over category codes: paths equal to or below any of ``prefixes``.

        Unknown prefixes match nothing (an empty result, not an error).
        """
        hit = self._prefix_cache.get(prefixes)
        if hit is not None:
            return hit
        mask = np.fromiter(
            (any(is_under(c, p) for p in prefixes) for c in self.catalog.categories),
            dtype=bool,
            count=len(self.catalog.categories),
        )
        if len(self._prefix_cache) >= _PREFIX_CACHE_SIZE:
            self._prefix_cache.clear()
        self._prefix_cache[prefixes] = mask
        return mask

    def mask(
        self,
        candidates: np.ndarray,
        filters: Filters,
        purchased: np.ndarray | None = None,
    ) -> np.ndarray:
        """Which candidates pass ``filters``.

        Parameters
        ----------
        candidates:
            int64 item indices (no ``-1`` padding).
        filters:
            The request's filters.
        purchased:
            Ascending item indices the shopper bought; dropped when
            ``filters.exclude_purchased``.

        Returns
        -------
        numpy.ndarray
            Boolean mask aligned with ``candidates``.
        """
        base = self.item_mask(filters)
        # Fancy indexing copies, so the shared per-filter mask is never written to.
        keep = np.ones(candidates.shape[0], dtype=bool) if base is None else base[candidates]
        if filters.exclude_purchased and purchased is not None and purchased.size:
            keep &= ~contains(purchased, candidates)
        return keep

    def item_mask(self, filters: Filters) -> np.ndarray | None:
        """Catalog-wide mask of the item filters (stock, category, price); ``None`` = all pass.

        A request filters several candidate sets (index results, trending chunks, scans of
        thousands of items), and most requests share a handful of filter sets, so each set's
        mask over the whole catalog is computed once and each check is one gather. The cache
        is bounded (a catalog-sized mask per entry) because filters come from requests.

        Parameters
        ----------
        filters:
            The request's filters (``exclude_purchased`` is not part of the mask).

        Returns
        -------
        numpy.ndarray or None
            Shared ``(n_items,)`` bool mask (index it, never write to it); ``None`` when no
            item filter is set.
        """
        if not filters.restricts_items:
            return self.catalog.in_stock if filters.in_stock_only else None
        key = (
            filters.in_stock_only,
            filters.include_categories,
            filters.exclude_categories,
            filters.min_price,
            filters.max_price,
        )
        hit = self._mask_cache.get(key)
        if hit is None:
            hit = self._item_mask(filters)
            hit.flags.writeable = False
            if len(self._mask_cache) >= _MASK_CACHE_SIZE:
                self._mask_cache.clear()
            self._mask_cache[key] = hit
        return hit

    def _item_mask(self, filters: Filters) -> np.ndarray:
        cat = self.catalog
        keep = cat.in_stock.copy() if filters.in_stock_only else np.ones(cat.n_items, dtype=bool)
        if filters.include_categories:
            keep &= self.categories_matching(filters.include_categories)[cat.category_codes]
        if filters.exclude_categories:
            keep &= ~self.categories_matching(filters.exclude_categories)[cat.category_codes]
        # NaN compares False, so items without a price never pass a price filter.
        if filters.min_price is not None:
            keep &= cat.prices >= filters.min_price
        if filters.max_price is not None:
            keep &= cat.prices <= filters.max_price
        return keep

    def fraction(self, filters: Filters) -> float:
        """Estimated share (cached per distinct filter set, which are few in practice)."""
        hit = self._fraction_cache.get(filters)
        if hit is None:
            hit = self._fraction(filters)
            if len(self._fraction_cache) >= _PREFIX_CACHE_SIZE:
                self._fraction_cache.clear()
            self._fraction_cache[filters] = hit
        return hit

    def _fraction(self, filters: Filters) -> float:
        """Estimated share of the catalog that passes the item filters (stock, category, price).

        Exact for each filter alone; combined as if independent. Retrieval uses it to size the
        index search, or to skip the index when the eligible set is small enough to scan.
        """
        cat = self.catalog
        n = max(cat.n_items, 1)
        share = 1.0
        if filters.in_stock_only:
            share *= float(self._in_stock_share)
        counts = np.diff(cat.code_indptr)
        if filters.include_categories:
            share *= float(counts[self.categories_matching(filters.include_categories)].sum()) / n
        if filters.exclude_categories:
            hit = counts[self.categories_matching(filters.exclude_categories)].sum()
            share *= 1.0 - float(hit) / n
        if filters.min_price is not None or filters.max_price is not None:
            prices = cat.sorted_prices
            lo = 0 if filters.min_price is None else np.searchsorted(prices, filters.min_price)
            hi = (
                prices.size
                if filters.max_price is None
                else np.searchsorted(prices, filters.max_price, side="right")
            )
            share *= float(max(int(hi) - int(lo), 0)) / n
        return share

    def allowed_items(self, filters: Filters, purchased: np.ndarray | None = None) -> np.ndarray:
        """Every item index that passes ``filters`` (the full-catalog fallback), ascending."""
        cat = self.catalog
        if filters.include_categories:
            # Start from the included categories' items rather than the whole catalog.
            codes = np.flatnonzero(self.categories_matching(filters.include_categories))
            parts = [cat.items_by_code[cat.code_indptr[c] : cat.code_indptr[c + 1]] for c in codes]
            base = np.sort(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        else:
            base = np.arange(cat.n_items, dtype=np.int64)
        return base[self.mask(base, filters, purchased)]
