"""Candidate filters over catalog arrays (recsys.filters)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.filters import CandidateFilter, CatalogArrays, is_under
from recsys.types import Filters


@pytest.fixture()
def catalog() -> CatalogArrays:
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(6)],
            "category": ["home/kitchen", "home/garden", "toys", "home", None, "homeware"],
            "base_price": [5.0, 15.0, 25.0, None, 8.0, 12.0],
            "stock": pd.array([3, 0, None, 1, 2, 5], dtype="Int64"),
        }
    )
    return CatalogArrays.from_frame(items)


ALL = np.arange(6, dtype=np.int64)


def kept(f: CandidateFilter, filters: Filters, purchased: np.ndarray | None = None) -> list[int]:
    return ALL[f.mask(ALL, filters, purchased)].tolist()


def test_arrays(catalog: CatalogArrays) -> None:
    assert catalog.in_stock.tolist() == [True, False, True, True, True, True]
    assert np.isnan(catalog.prices[3])
    tops = [catalog.top_categories[c] for c in catalog.top_codes]
    assert tops == ["home", "home", "toys", "home", "", "homeware"]


def test_prefix_matching_is_by_path_segment() -> None:
    assert is_under("home/kitchen", "home")
    assert is_under("home", "home/")
    assert not is_under("homeware", "home")


def test_each_filter(catalog: CatalogArrays) -> None:
    f = CandidateFilter(catalog)
    none = Filters(in_stock_only=False, exclude_purchased=False)
    assert kept(f, none) == [0, 1, 2, 3, 4, 5]
    assert kept(f, Filters(exclude_purchased=False)) == [0, 2, 3, 4, 5]
    assert kept(f, Filters(in_stock_only=False, include_categories=("home",))) == [0, 1, 3]
    assert kept(f, Filters(in_stock_only=False, exclude_categories=("home",))) == [2, 4, 5]
    assert kept(f, Filters(in_stock_only=False, min_price=8.0, max_price=15.0)) == [1, 4, 5]
    assert kept(f, Filters(include_categories=("nowhere",))) == []
    assert kept(f, Filters(in_stock_only=False), np.array([0, 5])) == [1, 2, 3, 4]
    assert (
        kept(f, Filters(in_stock_only=False, exclude_purchased=False), np.array([0]))
        == ALL.tolist()
    )


def test_combined_and_full_catalog(catalog: CatalogArrays) -> None:
    f = CandidateFilter(catalog)
    filters = Filters(include_categories=("home", "toys"), max_price=20.0)
    assert kept(f, filters, np.array([0])) == []
    assert f.allowed_items(Filters(include_categories=("toys",))).tolist() == [2]


def test_fraction_estimates_each_filter_exactly(catalog: CatalogArrays) -> None:
    f = CandidateFilter(catalog)
    assert f.fraction(Filters(in_stock_only=False)) == 1.0
    assert f.fraction(Filters()) == pytest.approx(5 / 6)
    assert f.fraction(Filters(in_stock_only=False, include_categories=("home",))) == 0.5
    assert f.fraction(Filters(in_stock_only=False, exclude_categories=("home",))) == 0.5
    assert f.fraction(Filters(in_stock_only=False, min_price=8.0, max_price=15.0)) == 0.5
    assert f.fraction(Filters(include_categories=("nowhere",))) == 0.0


def test_allowed_items_starts_from_included_categories(catalog: CatalogArrays) -> None:
    f = CandidateFilter(catalog)
    got = f.allowed_items(Filters(include_categories=("home", "homeware")), np.array([3]))
    assert got.tolist() == [0, 5]


def test_cached_item_masks_match_per_item_rules(catalog: CatalogArrays) -> None:
    f = CandidateFilter(catalog)
    cats = [catalog.categories[c] for c in catalog.category_codes]
    cases = [
        Filters(),
        Filters(in_stock_only=False),
        Filters(include_categories=("home",)),
        Filters(include_categories=("home",), in_stock_only=False),
        Filters(exclude_categories=("home/kitchen", "toys"), min_price=6.0),
        Filters(max_price=12.0, in_stock_only=False),
    ]
    for _ in range(2):  # the second pass is answered from the cache
        for filters in cases:
            want = [
                i
                for i in range(6)
                if (not filters.in_stock_only or catalog.in_stock[i])
                and (
                    not filters.include_categories
                    or any(is_under(cats[i], p) for p in filters.include_categories)
                )
                and not any(is_under(cats[i], p) for p in filters.exclude_categories)
                and (filters.min_price is None or catalog.prices[i] >= filters.min_price)
                and (filters.max_price is None or catalog.prices[i] <= filters.max_price)
                and i != 5
            ]
            got = f.mask(ALL, filters, np.array([5]))
            assert ALL[got].tolist() == want
            got[:] = False  # callers own the result: the cached mask must not change
