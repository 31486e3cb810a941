"""The pricing catalogue: one :class:`~pricing.context.ItemState` per item, from bundle files.

Pricing never imports the recommendation side, so the catalogue is built from the bundle's
``items.parquet`` and ``elasticity.parquet`` paths (or DataFrames). Everything here is the same
for every shopper.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from fairshelf.errors import InvalidArgument, NotFound
from pricing.context import ItemState

_ITEM_COLUMNS = ("item_id", "category", "base_price")


def _opt_float(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    f = float(value)
    return None if math.isnan(f) else f


class PricingCatalog:
    """Item states by id.

    Parameters
    ----------
    states:
        The item states; ids must be unique.
    """

    def __init__(self, states: Mapping[str, ItemState], unpriced: tuple[str, ...] = ()) -> None:
        self._states: dict[str, ItemState] = dict(states)
        # Items of the catalogue without a usable base price: recommended, never priced.
        self.unpriced = unpriced

    @classmethod
    def from_frames(
        cls, items: pd.DataFrame, elasticities: pd.DataFrame | None = None
    ) -> PricingCatalog:
        """Build from an items table and an optional elasticity table.

        Parameters
        ----------
        items:
            ``item_id``, ``category``, ``base_price`` and optionally ``unit_cost``, ``stock``,
            ``days_left``. An item whose base price is missing is left out of the catalogue
            and listed in :attr:`unpriced` (the trainer keeps such items, with no price, when
            it skips invalid rows).
        elasticities:
            Output of :func:`pricing.elasticity.fit_elasticities` (``item_id``, ``elasticity``,
            ``stderr``). Items it lacks get their category's mean when the table has one.

        Raises
        ------
        InvalidArgument
            Missing column, duplicate item id or a base price that is given but not positive.
        """
        missing = [c for c in _ITEM_COLUMNS if c not in items.columns]
        if missing:
            raise InvalidArgument(f"items lack column(s) {missing}", field=missing[0])
        ids = items["item_id"].astype(str)
        dup = ids[ids.duplicated()]
        if len(dup):
            raise InvalidArgument(f"duplicate item_id {dup.iloc[0]!r} in items", field="item_id")
        est: dict[str, tuple[float, float | None]] = {}
        by_cat: dict[str, tuple[float, float | None]] = {}
        if elasticities is not None and len(elasticities):
            e_ids = elasticities["item_id"].astype(str).tolist()
            e_vals = elasticities["elasticity"].astype(float).tolist()
            e_se = (
                elasticities["stderr"].astype(float).tolist()
                if "stderr" in elasticities.columns
                else [math.nan] * len(e_ids)
            )
            for i, val, s in zip(e_ids, e_vals, e_se, strict=True):
                est[i] = (val, None if math.isnan(s) else s)
            if "category" in elasticities.columns:
                grp = elasticities.groupby(elasticities["category"].astype(str))
                for cat, g in grp:
                    by_cat[str(cat)] = (float(g["elasticity"].mean()), float(g["stderr"].max()))
        records = items.to_dict("records")
        states: dict[str, ItemState] = {}
        unpriced: list[str] = []
        for row in records:
            item_id = str(row["item_id"])
            category = str(row["category"])
            price = _opt_float(row["base_price"])
            if price is None:
                unpriced.append(item_id)
                continue
            base = price
            if not base > 0:
                raise InvalidArgument(
                    f"item {item_id!r}: base_price must be > 0, got {base}", field="base_price"
                )
            stock = _opt_float(row.get("stock"))
            found = est.get(item_id) or by_cat.get(category)
            e: float | None = found[0] if found is not None else None
            se: float | None = found[1] if found is not None else None
            states[item_id] = ItemState(
                item_id=item_id,
                category=category,
                base_price=base,
                unit_cost=_opt_float(row.get("unit_cost")),
                stock=None if stock is None else int(stock),
                days_left=_opt_float(row.get("days_left")),
                elasticity=e,
                elasticity_stderr=se,
            )
        return cls(states, tuple(unpriced))

    @classmethod
    def from_paths(
        cls, items_path: str | Path, elasticity_path: str | Path | None = None
    ) -> PricingCatalog:
        """Build from a bundle's ``items.parquet`` and ``elasticity.parquet``."""
        items = pd.read_parquet(items_path)
        elasticities = pd.read_parquet(elasticity_path) if elasticity_path else None
        return cls.from_frames(items, elasticities)

    def get(self, item_id: str) -> ItemState:
        """The state of one item.

        Raises
        ------
        NotFound
            Unknown item id (the field is ``item_ids``).
        """
        try:
            return self._states[item_id]
        except KeyError:
            if item_id in self.unpriced:
                raise NotFound(
                    f"item {item_id!r} has no base price and is not priced", field="item_ids"
                ) from None
            raise NotFound(f"unknown item {item_id!r}", field="item_ids") from None

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._states

    def __iter__(self) -> Iterator[str]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)

    def updated(self, changes: Mapping[str, Mapping[str, Any]]) -> PricingCatalog:
        """A new catalogue with some fields of some items replaced (stock, elasticity...)."""
        states = dict(self._states)
        for item_id, fields in changes.items():
            states[item_id] = dataclasses.replace(self.get(item_id), **fields)
        return PricingCatalog(states, self.unpriced)
