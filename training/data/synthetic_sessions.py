"""Shopper behaviour for the synthetic storefront: sessions, the funnel, buy-again, returns.

Everything is vectorised over sessions and views so that a million events take seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from pricing.demand_curve import conversion
from training.data.canonical import EVENT_DTYPES
from training.data.synthetic_catalog import REGIONS, Catalog, Shoppers
from training.data.synthetic_experiment import PlantedExperiment, planted_lift

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Order of the funnel steps inside one view, used to break timestamp ties when sorting.
_STEP_ORDER = {"impression": 0, "view": 1, "click": 2, "add_to_cart": 3, "purchase": 4}


@dataclass(frozen=True)
class SessionModel:
    """Behavioural parameters of the synthetic shoppers (all recorded in ``truth.json``)."""

    loyal_share: float = 0.35
    loyal_sessions_per_day: float = 0.30
    new_sessions_per_day: float = 0.10
    mean_extra_views: float = 2.0  # views per session = 1 + Poisson(this)
    mean_filler_impressions: float = 3.0  # impressions of items not viewed
    favourite_share: float = 0.8  # chance a view is drawn from a favourite category
    candidates: int = 8  # items drawn per view before the affinity choice
    affinity_temperature: float = 0.35
    promo_day_share: float = 0.4  # share of item-days with a promotion or a markup
    max_price_move: float = 0.2  # promotions/markups move the price by up to this share
    click_no_buy: float = 0.25
    cart_no_buy: float = 0.3
    rebuy_probability_loyal: float = 0.6
    rebuy_probability_new: float = 0.35
    rebuy_mean_gap_days: float = 10.0
    rebuy_conversion_lift: float = 2.5
    rebuy_rounds: int = 3
    return_rate: float = 0.05
    extra_quantity_mean: float = 0.25  # purchased quantity = 1 + Poisson(this)
    planted: PlantedExperiment | None = None  # a known effect per experiment variant


def price_table(
    rng: np.random.Generator, base_price: FloatArray, days: int, model: SessionModel
) -> FloatArray:
    """Shown price per (item, day): the base price moved by promotions and markups.

    The price depends on the item and the day only, never on the shopper: the synthetic store
    is fair, which is the behaviour the fairness guard must preserve.
    """
    n = base_price.shape[0]
    moved = rng.random((n, days)) < model.promo_day_share
    # Round factors to 5 % steps so that price points repeat, as real promotions do.
    factor = np.round(rng.uniform(-1.0, 1.0, (n, days)) * model.max_price_move * 20.0) / 20.0
    factor = np.where(moved, 1.0 + factor, 1.0)
    return np.maximum(np.round(base_price[:, None] * factor, 2), 0.01)


def _choose_items(
    rng: np.random.Generator,
    catalog: Catalog,
    shoppers: Shoppers,
    user_of_view: IntArray,
    model: SessionModel,
) -> IntArray:
    """Pick the viewed item of every view: a category first, then by affinity inside it."""
    n_views = user_of_view.shape[0]
    n_cat = catalog.category_centroids.shape[0]
    fav = shoppers.favourites[user_of_view]
    pick_second = (fav[:, 1] >= 0) & (rng.random(n_views) < 0.5)
    fav_cat = np.where(pick_second, fav[:, 1], fav[:, 0])
    cat_weight = np.bincount(catalog.category_index, weights=catalog.popularity, minlength=n_cat)
    other_cat = rng.choice(n_cat, size=n_views, p=cat_weight / cat_weight.sum())
    cat = np.where(rng.random(n_views) < model.favourite_share, fav_cat, other_cat)

    # Items sorted by category with cumulative popularity: a uniform draw inside a
    # category's slice of the cumulative sum samples an item of that category by popularity.
    order = np.argsort(catalog.category_index, kind="stable")
    cum = np.cumsum(catalog.popularity[order])
    cat_end = np.searchsorted(catalog.category_index[order], np.arange(n_cat), side="right")
    hi = cum[cat_end - 1]
    starts = cat_end - np.bincount(catalog.category_index, minlength=n_cat)
    lo = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    u = rng.random((n_views, model.candidates))
    draw = lo[cat][:, None] + u * (hi[cat] - lo[cat])[:, None]
    pos = np.minimum(np.searchsorted(cum, draw, side="right"), len(cum) - 1)
    candidates = order[pos]

    affinity = np.einsum("vd,vkd->vk", shoppers.latent[user_of_view], catalog.latent[candidates])
    gumbel = -np.log(-np.log(rng.random(affinity.shape)))
    best = np.argmax(affinity / model.affinity_temperature + gumbel, axis=1)
    return np.asarray(candidates[np.arange(n_views), best], dtype=np.int64)


@dataclass
class _Views:
    """Viewed items with their session, time and outcome (aligned arrays)."""

    session: IntArray
    user: IntArray
    item: IntArray
    day: IntArray
    seconds: FloatArray  # from the window start
    lift: FloatArray


def simulate_events(
    rng: np.random.Generator,
    catalog: Catalog,
    shoppers: Shoppers,
    *,
    days: int,
    start: pd.Timestamp,
    model: SessionModel,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """Simulate the event log.

    Parameters
    ----------
    rng:
        The generator's random state.
    catalog, shoppers:
        From :mod:`training.data.synthetic_catalog`.
    days, start:
        The window.
    model:
        Behavioural parameters.
    progress:
        Called with the fraction done.

    Returns
    -------
    pandas.DataFrame
        Canonical events sorted by timestamp, with unique ``event_id``.
    """
    tick = progress or (lambda _f: None)
    prices = price_table(rng, catalog.base_price, days, model)

    # Sessions: Poisson count per user over their active part of the window.
    rate = np.where(shoppers.loyal, model.loyal_sessions_per_day, model.new_sessions_per_day)
    active = np.maximum(days - shoppers.active_from_day, 0.0)
    n_sess = rng.poisson(rate * active)
    sess_user = np.repeat(np.arange(n_sess.shape[0], dtype=np.int64), n_sess)
    a0 = shoppers.active_from_day[sess_user]
    sess_time = a0 + rng.random(sess_user.shape[0]) * (days - a0)
    sess_day = np.minimum(np.floor(sess_time).astype(np.int64), days - 1)
    # Start at least an hour before midnight so that a whole session stays on one price day.
    sess_sec = sess_day * 86400.0 + rng.random(sess_user.shape[0]) * (86400.0 - 3600.0)
    n_sessions = sess_user.shape[0]
    tick(0.1)

    views_per = np.minimum(1 + rng.poisson(model.mean_extra_views, n_sessions), 20)
    v_sess = np.repeat(np.arange(n_sessions, dtype=np.int64), views_per)
    v_rank = np.arange(v_sess.shape[0]) - np.repeat(np.cumsum(views_per) - views_per, views_per)
    v_user = sess_user[v_sess]
    views = _Views(
        session=v_sess,
        user=v_user,
        item=_choose_items(rng, catalog, shoppers, v_user, model),
        day=sess_day[v_sess],
        seconds=sess_sec[v_sess] + v_rank * 90.0 + rng.random(v_sess.shape[0]) * 60.0,
        lift=np.ones(v_sess.shape[0]),
    )
    tick(0.4)

    if model.planted is not None:
        boost = planted_lift(model.planted, shoppers.latent.shape[0])
        start_day = model.planted.start_day
    else:
        boost, start_day = None, 0

    def decide(v: _Views) -> BoolArray:
        if boost is not None:
            v.lift = v.lift * np.where(v.day >= start_day, boost[v.user], 1.0)
        return _decide(rng, catalog, prices, v)

    all_views = [views]
    bought = decide(views)
    all_bought = [bought]
    next_session = n_sessions
    rebuy_p = np.where(shoppers.loyal, model.rebuy_probability_loyal, model.rebuy_probability_new)
    for _ in range(model.rebuy_rounds):
        src = all_views[-1]
        mask = all_bought[-1] & (rng.random(src.item.shape[0]) < rebuy_p[src.user])
        gap = 1.0 + rng.exponential(model.rebuy_mean_gap_days, int(mask.sum()))
        t = src.seconds[mask] / 86400.0 + gap
        keep = t < days
        n_new = int(keep.sum())
        if n_new == 0:
            break
        day = np.floor(t[keep]).astype(np.int64)
        again = _Views(
            session=np.arange(next_session, next_session + n_new, dtype=np.int64),
            user=src.user[mask][keep],
            item=src.item[mask][keep],
            day=day,
            seconds=day * 86400.0 + rng.random(n_new) * (86400.0 - 3600.0),
            lift=np.full(n_new, model.rebuy_conversion_lift),
        )
        next_session += n_new
        all_views.append(again)
        all_bought.append(decide(again))
    tick(0.6)

    v = _Views(
        session=np.concatenate([x.session for x in all_views]),
        user=np.concatenate([x.user for x in all_views]),
        item=np.concatenate([x.item for x in all_views]),
        day=np.concatenate([x.day for x in all_views]),
        seconds=np.concatenate([x.seconds for x in all_views]),
        lift=np.concatenate([x.lift for x in all_views]),
    )
    buy = np.concatenate(all_bought)
    session_user = np.concatenate([sess_user, v.user[v.session >= n_sessions]])
    session_start = np.concatenate([sess_sec, v.seconds[v.session >= n_sessions]])
    events = _assemble(rng, catalog, shoppers, prices, v, buy, session_user, session_start, model)
    tick(0.8)
    return _to_frame(events, shoppers, start, days)


def _decide(
    rng: np.random.Generator, catalog: Catalog, prices: FloatArray, views: _Views
) -> BoolArray:
    """Whether each view ends in a purchase, by the shared demand law at the shown price."""
    shown = prices[views.item, views.day]
    p = conversion(
        shown,
        catalog.base_price[views.item],
        catalog.base_conversion[views.item] * views.lift,
        catalog.elasticity[views.item],
    )
    return np.asarray(rng.random(views.item.shape[0]) < p)


def _assemble(
    rng: np.random.Generator,
    catalog: Catalog,
    shoppers: Shoppers,
    prices: FloatArray,
    v: _Views,
    buy: BoolArray,
    session_user: IntArray,
    session_start: FloatArray,
    model: SessionModel,
) -> dict[str, np.ndarray]:
    """Expand views into funnel events, add filler impressions and returns."""
    n = v.item.shape[0]
    click = buy | (rng.random(n) < model.click_no_buy)
    cart = buy | (click & (rng.random(n) < model.cart_no_buy))
    qty = np.asarray(1 + rng.poisson(model.extra_quantity_mean, n), dtype=np.int64)
    shown = prices[v.item, v.day]

    parts: list[dict[str, np.ndarray]] = []

    def add(mask: BoolArray, step: str, offset: float, quantity: np.ndarray | None) -> None:
        k = int(mask.sum())
        parts.append(
            {
                "session": v.session[mask],
                "user": v.user[mask],
                "item": v.item[mask],
                "seconds": v.seconds[mask] + offset,
                "price": shown[mask],
                "quantity": quantity[mask] if quantity is not None else np.ones(k, np.int64),
                "step": np.full(k, _STEP_ORDER[step], np.int8),
            }
        )

    everything = np.ones(n, dtype=bool)
    add(everything, "impression", 0.0, None)
    add(everything, "view", 2.0, None)
    add(click, "click", 12.0, None)
    add(cart, "add_to_cart", 30.0, None)
    add(buy, "purchase", 75.0, qty)

    # Filler impressions: items shown in the session but not viewed, by popularity.
    n_sess = session_user.shape[0]
    n_fill = rng.poisson(model.mean_filler_impressions, n_sess)
    f_sess = np.repeat(np.arange(n_sess, dtype=np.int64), n_fill)
    f_item = rng.choice(
        catalog.popularity.shape[0],
        size=f_sess.shape[0],
        p=catalog.popularity / catalog.popularity.sum(),
    )
    f_sec = session_start[f_sess]
    f_day = np.floor(f_sec / 86400.0).astype(np.int64)
    parts.append(
        {
            "session": f_sess,
            "user": session_user[f_sess],
            "item": f_item,
            "seconds": f_sec,
            "price": prices[f_item, f_day],
            "quantity": np.ones(f_sess.shape[0], np.int64),
            "step": np.zeros(f_sess.shape[0], np.int8),
        }
    )

    # Returns: a few purchases come back 2-14 days later at the price paid.
    ret = buy & (rng.random(n) < model.return_rate)
    ret_sec = v.seconds + 75.0 + rng.uniform(2.0, 14.0, n) * 86400.0
    parts.append(
        {
            "session": v.session[ret],
            "user": v.user[ret],
            "item": v.item[ret],
            "seconds": ret_sec[ret],
            "price": shown[ret],
            "quantity": qty[ret],
            "step": np.full(int(ret.sum()), 5, np.int8),
        }
    )
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _to_frame(
    ev: dict[str, np.ndarray], shoppers: Shoppers, start: pd.Timestamp, days: int
) -> pd.DataFrame:
    """Sort, drop events past the window, name everything and cast to canonical dtypes."""
    inside = ev["seconds"] < days * 86400.0
    ev = {k: a[inside] for k, a in ev.items()}
    seconds = np.round(ev["seconds"]).astype(np.int64)
    order = np.lexsort((ev["step"], ev["item"], ev["session"], seconds))
    ev = {k: a[order] for k, a in ev.items()}
    seconds = seconds[order]
    n = seconds.shape[0]

    step_names = np.array(["impression", "view", "click", "add_to_cart", "purchase", "return"])
    device = shoppers.device_index[ev["user"]]
    app = np.where(device == 2, "web", "app")
    region = np.array(REGIONS)[shoppers.region_index[ev["user"]]]
    ts = start + pd.to_timedelta(seconds, unit="s")
    frame = pd.DataFrame(
        {
            "event_id": "E" + pd.Series(np.arange(n)).astype("str").str.zfill(9),
            "user_id": "U" + pd.Series(ev["user"]).astype("str").str.zfill(6),
            "item_id": "I" + pd.Series(ev["item"]).astype("str").str.zfill(5),
            "event_type": step_names[ev["step"]],
            "timestamp": ts,
            "quantity": ev["quantity"].astype(np.int64),
            "unit_price": ev["price"].astype(np.float64),
            "session_id": "S" + pd.Series(ev["session"]).astype("str").str.zfill(8),
            "channel": app,
            "region": region,
        }
    )
    return frame.astype(EVENT_DTYPES)
