"""Attribution: one row per exposed shopper, with what they did before and after exposure.

The unit is the shopper. A shopper enters the experiment at their first exposure and stays
in the variant of that exposure; their clicks, add-to-carts and purchases after it count for
that variant, whatever they bought. On top, item-level credit goes to clicks and purchases of
an item the shopper was shown, within ``window`` after a showing (the recommended-item CTR
and the revenue from recommended items). Behaviour in ``lookback`` before the first exposure
is the CUPED covariate.

Inputs are two tables: exposures (``user_id``, ``variant``, ``ts``, ``items``: the list of
item ids shown, position = index + 1) and canonical events (``event_id``, ``user_id``,
``item_id``, ``event_type``, ``timestamp``, ``quantity``, ``unit_price``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import numpy as np
import pandas as pd

DEFAULT_WINDOW: Final[timedelta] = timedelta(days=7)
DEFAULT_LOOKBACK: Final[timedelta] = timedelta(days=28)

UNIT_COLUMNS: Final[tuple[str, ...]] = (
    "user_id", "variant", "first_exposure", "exposures", "clicks", "add_to_carts", "orders",
    "revenue", "rec_shown", "rec_clicks", "rec_orders", "rec_revenue", "pre_orders",
    "pre_revenue",
)  # fmt: skip


def _sum_by_user(frame: pd.DataFrame, value: pd.Series | None, name: str) -> pd.Series:
    if value is None:
        return frame.groupby("user_id").size().rename(name).astype(np.float64)
    return value.groupby(frame["user_id"]).sum().rename(name).astype(np.float64)


def attribute(
    exposures: pd.DataFrame,
    events: pd.DataFrame,
    *,
    until: datetime | None = None,
    window: timedelta = DEFAULT_WINDOW,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> pd.DataFrame:
    """Per exposed shopper: variant, outcomes after exposure, item-level credit, covariates.

    Parameters
    ----------
    exposures:
        The experiment's exposures (columns ``user_id``, ``variant``, ``ts``, ``items``).
    events:
        Canonical events of (at least) the exposed shoppers.
    until:
        Count only exposures and events at or before this time (a look at the experiment as
        it stood then); ``None``: everything given.
    window:
        How long after a showing a click or purchase of that item is credited to it.
    lookback:
        How far before the first exposure the covariate looks.

    Returns
    -------
    pandas.DataFrame
        One row per shopper with the columns of :data:`UNIT_COLUMNS`; shoppers without any
        event have zeros.
    """
    exp = exposures if until is None else exposures[exposures["ts"] <= until]
    if exp.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in UNIT_COLUMNS})
    exp = exp.sort_values("ts", kind="stable")
    first = exp.groupby("user_id", sort=True).agg(
        variant=("variant", "first"), first_exposure=("ts", "first"), exposures=("ts", "size")
    )
    shown = exp[["user_id", "ts", "items"]].explode("items").dropna(subset=["items"])
    shown = shown.rename(columns={"items": "item_id", "ts": "shown_at"})
    units = first.copy()
    units["exposures"] = units["exposures"].astype(np.float64)
    units["rec_shown"] = _sum_by_user(shown, None, "rec_shown")

    ev = events[events["user_id"].isin(first.index)]
    if until is not None:
        ev = ev[ev["timestamp"] <= until]
    ev = ev.join(first["first_exposure"], on="user_id")
    post = ev[ev["timestamp"] >= ev["first_exposure"]]
    pre = ev[
        (ev["timestamp"] < ev["first_exposure"])
        & (ev["timestamp"] >= ev["first_exposure"] - lookback)
    ]
    kind = post["event_type"]
    bought = post[kind == "purchase"]
    units["clicks"] = _sum_by_user(post[kind == "click"], None, "clicks")
    units["add_to_carts"] = _sum_by_user(post[kind == "add_to_cart"], None, "add_to_carts")
    units["orders"] = _sum_by_user(bought, None, "orders")
    units["revenue"] = _sum_by_user(bought, bought["quantity"] * bought["unit_price"], "revenue")
    pre_bought = pre[pre["event_type"] == "purchase"]
    units["pre_orders"] = _sum_by_user(pre_bought, None, "pre_orders")
    units["pre_revenue"] = _sum_by_user(
        pre_bought, pre_bought["quantity"] * pre_bought["unit_price"], "pre_revenue"
    )

    acted = post[post["event_type"].isin(("click", "purchase"))]
    credited = acted.merge(shown, on=["user_id", "item_id"], how="inner")
    credited = credited[
        (credited["timestamp"] >= credited["shown_at"])
        & (credited["timestamp"] <= credited["shown_at"] + window)
    ].drop_duplicates(subset="event_id")
    rec_buy = credited[credited["event_type"] == "purchase"]
    units["rec_clicks"] = _sum_by_user(credited[credited["event_type"] == "click"], None, "c")
    units["rec_orders"] = _sum_by_user(rec_buy, None, "o")
    units["rec_revenue"] = _sum_by_user(rec_buy, rec_buy["quantity"] * rec_buy["unit_price"], "r")
    numeric = [c for c in UNIT_COLUMNS if c not in ("user_id", "variant", "first_exposure")]
    units[numeric] = units[numeric].fillna(0.0)
    return units.reset_index()[list(UNIT_COLUMNS)]
