"""Fit every model of the bundle on the events before one cut.

The same function serves the validation cut (to choose blend weights and ALS size), the
evaluation cut and the final fit, so the three are trained identically.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys.confidence import ConfidenceParams, bm25_idf, pair_confidence, transform_weights
from recsys.hybrid import repeat_score_from_ages
from training.als_train import fit_als
from training.config import TrainConfig
from training.evaluation import EvalSplit, make_split
from training.item_models import ease_matrix, rp3beta_matrix
from training.two_tower_check import future_check
from training.two_tower_data import TwoTowerData, build_examples
from training.two_tower_model import TwoTower
from training.two_tower_train import (
    TwoTowerConfig,
    encode_items,
    encode_users,
    train_two_tower,
)


@dataclass
class Catalog:
    """The item catalog with index-aligned features (row i = item index i)."""

    items: pd.DataFrame
    item_ids: pd.Index
    category_index: np.ndarray
    price_band: np.ndarray
    band_edges: list[float]

    @classmethod
    def build(cls, items: pd.DataFrame, n_bands: int) -> Catalog:
        """Index the catalog and derive category and price-band features."""
        items = items.reset_index(drop=True)
        cats = items["category"].fillna("").astype(str)
        codes, _ = pd.factorize(cats, sort=True)
        price = pd.to_numeric(items["base_price"], errors="coerce").to_numpy(dtype=np.float64)
        ok = np.isfinite(price)
        edges: list[float] = []
        band = np.full(len(items), n_bands, dtype=np.int64)  # n_bands = unknown price
        if ok.any():
            edges = np.unique(np.quantile(price[ok], np.linspace(0, 1, n_bands + 1)[1:-1])).tolist()
            band[ok] = np.searchsorted(np.asarray(edges), price[ok], side="right")
        return cls(
            items=items,
            item_ids=pd.Index(items["item_id"].astype(str)),
            category_index=codes.astype(np.int64),
            price_band=band,
            band_edges=[float(x) for x in edges],
        )

    @property
    def n_items(self) -> int:
        """Catalog size."""
        return len(self.item_ids)


@dataclass
class Fitted:
    """Everything trained on one window of events."""

    user_ids: pd.Index
    reference_time: pd.Timestamp
    confidence: ConfidenceParams
    idf: np.ndarray
    interactions: pd.DataFrame
    weights: sp.csr_matrix
    purchases: sp.csr_matrix
    purchase_ages: pd.DataFrame
    trend: np.ndarray
    known_items: np.ndarray
    # (item index, age in days, popularity weight) of every event that counts for trend.
    trend_events: tuple[np.ndarray, np.ndarray, np.ndarray]
    als: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    two_tower: TwoTower | None = None
    tt_data: TwoTowerData | None = None
    tt_items: np.ndarray | None = None
    tt_users: np.ndarray | None = None
    item_item: dict[str, sp.csr_matrix] = field(default_factory=dict)
    # Truth of the period after the window, when fit_window was given its events.
    later_splits: dict[str, EvalSplit] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        """Number of known users."""
        return len(self.user_ids)

    def trend_vector(self, half_life_days: float) -> np.ndarray:
        """Recency-weighted popularity per item at the reference time."""
        i, age, w = self.trend_events
        return np.bincount(
            i, weights=w * np.power(0.5, age / half_life_days), minlength=self.purchases.shape[1]
        ).astype(np.float32)

    def repeat_matrix(self, half_life_days: float, item_exponent: float = 0.0) -> sp.csr_matrix:
        """Buy-again scores (users x items) at the reference time.

        Each purchase session counts ``0.5 ** (age / half_life)``, times
        ``item_repeat_rate ** item_exponent`` of its item.
        """
        a = self.purchase_ages
        val = repeat_score_from_ages(a["age_days"].to_numpy(), half_life_days)
        if item_exponent > 0:
            val = val * np.power(item_repeat_rate(self.purchases), item_exponent)[a["i"].to_numpy()]
        return sp.csr_matrix(
            (val, (a["u"].to_numpy(), a["i"].to_numpy())), shape=self.purchases.shape
        ).tocsr()


def item_repeat_rate(purchases: sp.csr_matrix) -> np.ndarray:
    """Per item, ``(buyers in 2+ sessions + 1) / (buyers + 2)`` (0.5 when never bought).

    Parameters
    ----------
    purchases:
        (users x items) purchase-session counts.

    Returns
    -------
    numpy.ndarray
        float64 smoothed repeat rate per item, in (0, 1).
    """
    m = purchases.tocsr()
    buyers = np.bincount(m.indices[m.data > 0], minlength=m.shape[1])
    repeaters = np.bincount(m.indices[m.data > 1], minlength=m.shape[1])
    return (repeaters + 1.0) / (buyers + 2.0)


def _purchase_sessions(ev: pd.DataFrame) -> pd.DataFrame:
    buys = ev[ev["event_type"] == "purchase"]
    key = buys["session_id"] if buys["session_id"].notna().any() else None
    if key is None:
        key = buys["timestamp"].dt.floor("D").astype("int64").astype(str)
    return (
        buys.assign(s=key.astype(str))
        .groupby(["u", "i", "s"], sort=False)["timestamp"]
        .max()
        .reset_index()
    )


def content_only(model: TwoTower, known: np.ndarray) -> None:
    """Zero the id embeddings of the items no event of the window touches.

    Such items (new in the catalogue, or never bought) got no gradient, so their id rows are
    still the random initialisation; zeroed, their item-tower vectors come from their content
    alone (category and price band, which were trained on other items), so a new item ranks
    beside comparable items from the day it enters the catalogue.
    """
    cold = np.flatnonzero(~known)
    if cold.size:
        with torch.no_grad():
            model.item.features.ids.weight[torch.from_numpy(cold)] = 0.0


def fit_item_item(fitted: Fitted, cfg: TrainConfig) -> None:
    """Fit EASE (small enough catalogs only) and RP3beta into ``fitted.item_item``."""
    ii = cfg.item_item
    n_bought = int((np.diff(fitted.purchases.tocsc().indptr) > 0).sum())
    if ii.ease and 0 < n_bought <= ii.ease_max_items:
        t = time.perf_counter()
        fitted.item_item["ease"] = ease_matrix(fitted.purchases, ii.ease_lambda, ii.top_k)
        fitted.timings["ease"] = time.perf_counter() - t
    if ii.rp3beta and 0 < n_bought <= ii.rp3beta_max_items:
        t = time.perf_counter()
        fitted.item_item["rp3beta"] = rp3beta_matrix(
            fitted.purchases, ii.rp3beta_alpha, ii.rp3beta_beta, ii.top_k
        )
        fitted.timings["rp3beta"] = time.perf_counter() - t


def _als_start(
    fitted: Fitted, factors: list[int], n_items: int, tt: TwoTowerConfig
) -> np.ndarray | None:
    """ALS item factors the two-tower may start from (the first size fitted), if allowed."""
    if not factors or tt.als_warm_start <= 0 or n_items > tt.warm_start_max_items:
        return None
    return fitted.als[factors[0]][1]


def fit_window(
    events: pd.DataFrame,
    catalog: Catalog,
    cfg: TrainConfig,
    seed: int,
    factors: list[int],
    with_two_tower: bool,
    tt_epochs: int | None = None,
    tt_warm_start: bool = False,
    check_events: pd.DataFrame | None = None,
    check_users: int = 2000,
) -> Fitted:
    """Fit ALS (one model per entry of ``factors``), popularity and the two-tower model.

    Parameters
    ----------
    events:
        Canonical events of the training window, items already restricted to the catalog and
        event types to those with positive weight.
    catalog:
        Indexed catalog.
    cfg:
        Trainer configuration.
    seed:
        Random seed.
    factors:
        ALS sizes to fit.
    with_two_tower:
        Whether to train the two-tower model.
    tt_epochs:
        Two-tower epochs on every shopper (the count early stopping chose on the validation
        window); ``None`` stops early on held-out shoppers.
    tt_warm_start:
        With ``tt_epochs``: start the two-tower's item ids from this window's ALS factors (the
        validation window's choice, ``TwoTower.warm_started``).
    check_events:
        Events after the window (the validation period): their truth is kept
        (``later_splits``), and without ``tt_epochs`` the two-tower may stop early, and choose
        its start, on them (:mod:`training.two_tower_check`) instead of on held-out shoppers.
    check_users:
        Shoppers of ``check_events`` sampled per mode for that check (0: all).

    Returns
    -------
    Fitted
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ref = events["timestamp"].max()
    user_ids = pd.Index(pd.unique(events["user_id"].astype(str)))
    ev = events.assign(
        u=user_ids.get_indexer(pd.Index(events["user_id"].astype(str))),
        i=catalog.item_ids.get_indexer(pd.Index(events["item_id"].astype(str))),
    )
    n_u, n_i = len(user_ids), catalog.n_items
    c = cfg.confidence
    params = ConfidenceParams(
        event_weights=c.event_weights,
        quantity_weight=c.quantity_weight,
        quantity_cap=c.quantity_cap,
        recency_half_life_days=c.recency_half_life_days,
        transform=c.transform,
        bm25_k1=c.bm25_k1,
        bm25_b=c.bm25_b,
        regularization=cfg.als.regularization,
        alpha=c.alpha,
    )
    pc = pair_confidence(ev, params, ref)
    pu = user_ids.get_indexer(pd.Index(pc["user_id"].astype(str)))
    pi = catalog.item_ids.get_indexer(pd.Index(pc["item_id"].astype(str)))
    conf = pc["confidence"].to_numpy(dtype=np.float64)
    idf = bm25_idf(pi, n_u, n_i)
    row_sums = np.bincount(pu, weights=conf, minlength=n_u)
    params = params.model_copy(update={"bm25_avg_length": float(row_sums[row_sums > 0].mean())})
    w = transform_weights(pu, pi, conf, params, idf)
    weights = sp.csr_matrix((w, (pu, pi)), shape=(n_u, n_i))
    weights.sum_duplicates()

    sessions = _purchase_sessions(ev)
    ages = pd.DataFrame(
        {
            "u": sessions["u"].to_numpy(),
            "i": sessions["i"].to_numpy(),
            "age_days": (ref - sessions["timestamp"]).dt.total_seconds().to_numpy() / 86400.0,
        }
    )
    purchases = sp.csr_matrix(
        (np.ones(len(ages), dtype=np.float32), (ages["u"].to_numpy(), ages["i"].to_numpy())),
        shape=(n_u, n_i),
    )
    purchases.sum_duplicates()
    last_buy = sessions.groupby(["u", "i"])["timestamp"].max()
    inter = pd.DataFrame(
        {"user_index": pu.astype(np.int32), "item_index": pi.astype(np.int32)}
    ).assign(confidence=conf.astype(np.float32), weight=w)
    inter["purchases"] = np.asarray(purchases[pu, pi]).ravel().astype(np.int32)
    lb = last_buy.reindex(pd.MultiIndex.from_arrays([pu, pi]))
    inter["last_purchase"] = lb.to_numpy()

    pop_w = ev["event_type"].map(cfg.popularity.event_weights).fillna(0.0).to_numpy()
    age = (ref - ev["timestamp"]).dt.total_seconds().to_numpy() / 86400.0
    on = pop_w > 0
    trend_events = (ev["i"].to_numpy()[on], age[on], pop_w[on])
    known = np.zeros(n_i, dtype=bool)
    known[pi] = True
    timings["prepare"] = time.perf_counter() - t0

    fitted = Fitted(
        user_ids=user_ids,
        reference_time=ref,
        confidence=params,
        idf=idf,
        interactions=inter,
        weights=weights.tocsr(),
        purchases=purchases.tocsr(),
        purchase_ages=ages,
        trend=np.zeros(n_i, dtype=np.float32),
        trend_events=trend_events,
        known_items=known,
        timings=timings,
    )
    if check_events is not None:
        fitted.later_splits = splits_for(fitted, catalog, check_events)
    for f in factors:
        t = time.perf_counter()
        fitted.als[f] = fit_als(
            fitted.weights,
            f,
            cfg.als.regularization,
            cfg.als.iterations,
            seed,
            cfg.als.threads,
            cfg.show_progress,
        )
        timings[f"als_{f}"] = time.perf_counter() - t
    fitted.trend = fitted.trend_vector(cfg.popularity.half_life_days)
    fit_item_item(fitted, cfg)
    if with_two_tower:
        t = time.perf_counter()
        tt = cfg.two_tower
        target = ev["event_type"].isin(tt.target_types).to_numpy()
        if not target.any():
            target = np.ones(len(ev), dtype=bool)
        sess = ev["session_id"] if ev["session_id"].notna().any() else None
        skey = (
            pd.factorize(sess.astype(str))[0]
            if sess is not None
            else pd.factorize(ev["timestamp"].dt.floor("D").astype("int64"))[0]
        )
        data = build_examples(
            ev["u"].to_numpy(),
            ev["i"].to_numpy(),
            ev["timestamp"].astype("datetime64[ns, UTC]").astype("int64").to_numpy(),
            np.asarray(skey, dtype=np.int64),
            target,
            n_u,
            n_i,
            tt.history_length,
            tt.novel_targets_only,
            tt.target_window_days,
            tt.reconstruction,
        )
        check = None
        if fitted.later_splits is not None and tt_epochs is None:
            check = future_check(fitted.later_splits, data.final_histories, check_users, seed)
        if data.n_rows >= 2:
            model = train_two_tower(
                data,
                n_i,
                catalog.category_index,
                catalog.price_band,
                tt,
                seed,
                cfg.show_progress,
                tt_epochs,
                _als_start(fitted, factors, n_i, tt),
                tt_warm_start,
                check,
            )
            content_only(model, known)
            fitted.two_tower = model
            fitted.tt_data = data
            fitted.tt_items = encode_items(model, n_i)
            fitted.tt_users = encode_users(model, data.final_histories)
        timings["two_tower"] = time.perf_counter() - t
    return fitted


def splits_for(fitted: Fitted, catalog: Catalog, test: pd.DataFrame) -> dict[str, EvalSplit]:
    """Truth for both modes from the purchases after a window's end."""
    buys = test[test["event_type"] == "purchase"]
    u = fitted.user_ids.get_indexer(pd.Index(buys["user_id"].astype(str)))
    i = catalog.item_ids.get_indexer(pd.Index(buys["item_id"].astype(str)))
    ok = (u >= 0) & (i >= 0)
    ok &= fitted.known_items[np.clip(i, 0, None)]
    return {
        mode: make_split(u[ok], i[ok], fitted.purchases, fitted.known_items, mode)
        for mode in ("all", "novel")
    }
