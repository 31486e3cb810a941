"""Trending lists for a page context: what unknown and opted-out shoppers see (SPEC §5).

The bundle's ``popularity.parquet`` holds the top items per scope (``"*"`` for the whole
catalog, or a category path prefix), and ``items.trend_score`` ranks every item. A request for
a category walks a chain from specific to general — the deepest scope that contains the
category, then ``"*"``, then every item by trend score — so a list is never short merely
because a category's top list was filtered down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.schema import CATEGORY_SEPARATOR

GLOBAL_SCOPE = "*"

# Items are scanned in chunks so a filter that keeps few items costs a few vector operations,
# not one per item.
_CHUNK = 512


@dataclass(frozen=True)
class TrendingCandidates:
    """Trending candidates in ranking order.

    Parameters
    ----------
    items:
        int64 item indices, best first, unique.
    in_scope:
        bool, True where the item came from the context category's own list.
    scope:
        The category scope used (``"*"`` when none matched).
    """

    items: np.ndarray
    in_scope: np.ndarray
    scope: str


class TrendingLists:
    """Per-scope trending lists precomputed from a bundle.

    Parameters
    ----------
    popularity:
        ``scope``, ``rank``, ``item_index`` (``popularity.parquet``).
    trend_score:
        ``(n_items,)`` per-item trend score; NaN counts as 0.
    """

    def __init__(self, popularity: pd.DataFrame, trend_score: np.ndarray) -> None:
        pop = popularity.sort_values(["scope", "rank"], kind="stable")
        self._scopes: dict[str, np.ndarray] = {
            str(scope): g["item_index"].to_numpy(dtype=np.int64)
            for scope, g in pop.groupby("scope", sort=False)
        }
        score = np.nan_to_num(np.asarray(trend_score, dtype=np.float64), nan=0.0)
        # Stable on -score: ties keep catalog order, so lists are reproducible.
        self._all = np.argsort(-score, kind="stable").astype(np.int64)

    @property
    def scopes(self) -> tuple[str, ...]:
        """Scopes with a precomputed list."""
        return tuple(self._scopes)

    def scope_for(self, category: str | None) -> str:
        """Deepest scope equal to or above ``category``; ``"*"`` when none is."""
        if category:
            parts = category.strip(CATEGORY_SEPARATOR).split(CATEGORY_SEPARATOR)
            for depth in range(len(parts), 0, -1):
                prefix = CATEGORY_SEPARATOR.join(parts[:depth])
                if prefix in self._scopes:
                    return prefix
        return GLOBAL_SCOPE

    def candidates(
        self,
        category: str | None,
        needed: int,
        keep: Callable[[np.ndarray], np.ndarray],
    ) -> TrendingCandidates:
        """Collect at least ``needed`` items passing ``keep``, in trending order.

        Parameters
        ----------
        category:
            Context category, or ``None`` for the whole catalog.
        needed:
            How many items to gather (fewer only if the catalog has fewer that pass).
        keep:
            Vectorised filter: item indices -> boolean mask.

        Returns
        -------
        TrendingCandidates
        """
        scope = self.scope_for(category)
        chain = [self._scopes[scope]] if scope in self._scopes else []
        if scope != GLOBAL_SCOPE and GLOBAL_SCOPE in self._scopes:
            chain.append(self._scopes[GLOBAL_SCOPE])
        chain.append(self._all)
        got: list[np.ndarray] = []
        in_scope: list[np.ndarray] = []
        n = 0
        seen: set[int] = set()
        for tier, arr in enumerate(chain):
            for lo in range(0, arr.size, _CHUNK):
                chunk = arr[lo : lo + _CHUNK]
                chunk = chunk[keep(chunk)]
                if seen:
                    chunk = chunk[[int(i) not in seen for i in chunk.tolist()]]
                if chunk.size == 0:
                    continue
                got.append(chunk)
                in_scope.append(
                    np.full(chunk.size, tier == 0 and scope != GLOBAL_SCOPE, dtype=bool)
                )
                seen.update(chunk.tolist())
                n += chunk.size
                if n >= needed:
                    break
            if n >= needed:
                break
        if not got:
            return TrendingCandidates(np.empty(0, np.int64), np.empty(0, bool), scope)
        return TrendingCandidates(np.concatenate(got), np.concatenate(in_scope), scope)
