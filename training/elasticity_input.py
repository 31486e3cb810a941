"""The call into the pricing elasticity fit, on item-period aggregates only.

Only item, time, event type, quantity and price columns leave this module: shopper columns are
removed before the pricing code sees the events, so pricing never learns who bought
(SPEC §7, G1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairshelf.errors import FairshelfError
from training.fit import Catalog

# Everything the aggregation needs; nothing that identifies a shopper.
PUBLIC_EVENT_COLUMNS = ("item_id", "event_type", "timestamp", "quantity", "unit_price")


def public_events(events: pd.DataFrame, until: pd.Timestamp) -> pd.DataFrame:
    """The training-window events reduced to :data:`PUBLIC_EVENT_COLUMNS`."""
    ev = events.loc[events["timestamp"] <= until, list(PUBLIC_EVENT_COLUMNS)].copy()
    ev["quantity"] = ev["quantity"].fillna(1)
    return ev.reset_index(drop=True)


def elasticity_table(
    events: pd.DataFrame, catalog: Catalog, until: pd.Timestamp
) -> tuple[pd.DataFrame | None, str | None]:
    """Fit elasticities with ``pricing.elasticity`` when it is available.

    Parameters
    ----------
    events:
        Canonical events (any columns; shopper columns are dropped here).
    catalog:
        The indexed catalog (``item_id``, ``category``).
    until:
        Last training timestamp: later events are not used.

    Returns
    -------
    (table, note):
        The ``elasticity.parquet`` table (or None) and a note for the report when skipped.
    """
    try:
        from pricing.elasticity import fit_elasticities, observations_from_events
    except ImportError:
        return None, "pricing.elasticity is not available; elasticity.parquet not written"
    items = catalog.items[["item_id", "category"]].copy()
    items["item_id"] = items["item_id"].astype(str)
    items["category"] = items["category"].fillna("").astype(str)
    try:
        obs = observations_from_events(public_events(events, until), items)
        if obs.empty:
            return None, "no priced purchases; elasticity.parquet not written"
        table = fit_elasticities(obs)
    except (FairshelfError, ValueError, np.linalg.LinAlgError) as exc:
        return None, f"elasticity fit failed ({exc}); elasticity.parquet not written"
    return table.reset_index(drop=True), None
