"""Item-day sales aggregates for the pricing elasticity fit, and the call into it.

Only item, day, price and units leave this module: shopper identities are dropped before the
aggregation, so the pricing side never sees who bought (SPEC §7, G1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pricing.errors import FairshelfError
from training.fit import Catalog


def item_day_observations(
    events: pd.DataFrame, catalog: Catalog, until: pd.Timestamp
) -> pd.DataFrame:
    """Purchases aggregated to (item, day): quantity-weighted mean price and units sold.

    Returns
    -------
    pandas.DataFrame
        Columns ``item_id``, ``category``, ``period`` (UTC day), ``price``, ``units``.
    """
    buys = events.loc[
        (events["event_type"] == "purchase") & (events["timestamp"] <= until),
        ["item_id", "timestamp", "quantity", "unit_price"],
    ]
    qty = buys["quantity"].fillna(1).astype("float64").clip(lower=1.0)
    price = pd.to_numeric(buys["unit_price"], errors="coerce")
    ok = price.notna() & (price > 0)
    frame = pd.DataFrame(
        {
            "item_id": buys["item_id"].astype(str)[ok],
            "period": buys["timestamp"][ok].dt.floor("D"),
            "units": qty[ok],
            "revenue": (qty * price)[ok],
        }
    )
    agg = frame.groupby(["item_id", "period"], as_index=False)[["units", "revenue"]].sum()
    agg["price"] = agg["revenue"] / agg["units"]
    cats = pd.Series(
        catalog.items["category"].fillna("").astype(str).to_numpy(), index=catalog.item_ids
    )
    agg["category"] = cats.reindex(agg["item_id"]).to_numpy()
    return agg[["item_id", "category", "period", "price", "units"]]


def elasticity_table(
    events: pd.DataFrame, catalog: Catalog, until: pd.Timestamp
) -> tuple[pd.DataFrame | None, str | None]:
    """Fit elasticities when the pricing module provides the fit.

    Returns
    -------
    (table, note):
        The ``elasticity.parquet`` table (or None) and a note for the report when skipped.
    """
    try:
        from pricing.elasticity import fit_elasticities
    except ImportError:
        return None, "pricing.elasticity is not available; elasticity.parquet not written"
    obs = item_day_observations(events, catalog, until)
    if obs.empty:
        return None, "no priced purchases; elasticity.parquet not written"
    try:
        table = fit_elasticities(obs)
    except (FairshelfError, ValueError, np.linalg.LinAlgError) as exc:
        return None, f"elasticity fit failed ({exc}); elasticity.parquet not written"
    return table.reset_index(drop=True), None
