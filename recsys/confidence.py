"""Implicit-feedback confidence weights and the ALS user solve that consumes them.

The trainer builds the ALS matrix with these functions, and the online fold-in reuses them with
the parameters stored in the bundle manifest (plus the per-item BM25 idf column of
``items.parquet``), so that folding in a user's own training rows reproduces the user vector
stored in the bundle.

Confidence of a (user, item) pair, before the optional BM25 transform::

    c = sum over distinct (session, event type) of
        event_weight[type] * (1 + quantity_weight * log(quantity)) * 0.5 ** (age_days / half_life)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from fairshelf.errors import InvalidArgument

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "impression": 0.0,
    "view": 0.1,
    "click": 0.2,
    "add_to_cart": 0.5,
    "purchase": 1.0,
    "return": 0.0,
}


class ConfidenceParams(BaseModel):
    """Everything needed to turn events into ALS confidences and to fold a user in.

    Parameters
    ----------
    event_weights:
        Weight of one session-level event of each type (intent order: purchase > cart > click >
        view). Types absent or weighted 0 are ignored.
    quantity_weight:
        Strength of the log-quantity boost; 0 ignores quantity.
    quantity_cap:
        Quantities are clipped here first, because wholesale orders of thousands of units would
        otherwise dominate.
    recency_half_life_days:
        Events lose half their weight every this many days before the reference time; ``None``
        disables decay.
    transform:
        ``"bm25"`` (down-weights very popular items and very long histories) or ``"none"``.
    bm25_k1, bm25_b:
        BM25 saturation and length-normalisation parameters.
    bm25_avg_length:
        Mean per-user raw confidence sum over the training matrix (set by the trainer).
    regularization:
        ALS L2 regularization, used by :func:`solve_user_vector`.
    alpha:
        Scale applied to the weights before the solve (implicit's ``alpha``).
    """

    model_config = ConfigDict(frozen=True)

    event_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    quantity_weight: float = 0.0
    quantity_cap: float = 100.0
    recency_half_life_days: float | None = 90.0
    transform: Literal["bm25", "none"] = "bm25"
    bm25_k1: float = 100.0
    bm25_b: float = 0.8
    bm25_avg_length: float = 1.0
    regularization: float = 0.1
    alpha: float = 1.0


def pair_confidence(
    events: pd.DataFrame, params: ConfidenceParams, reference_time: pd.Timestamp
) -> pd.DataFrame:
    """Aggregate canonical events into one raw confidence per (user_id, item_id).

    Parameters
    ----------
    events:
        Canonical events (``user_id``, ``item_id``, ``event_type``, ``timestamp``; optional
        ``quantity`` and ``session_id``). Repeats of the same type in one session count once.
    params:
        Weights, quantity and recency settings.
    reference_time:
        Time at which age is measured (usually the last training event).

    Returns
    -------
    pandas.DataFrame
        Columns ``user_id``, ``item_id``, ``confidence`` (float64, > 0).
    """
    weights = events["event_type"].map(params.event_weights).fillna(0.0).astype("float64")
    ev = events.loc[weights > 0, ["user_id", "item_id", "event_type", "timestamp"]].copy()
    ev["w"] = weights[weights > 0]
    qty = events["quantity"] if "quantity" in events.columns else None
    ev["q"] = 1.0 if qty is None else qty[weights > 0].fillna(1).astype("float64").clip(1.0)
    sess = events["session_id"] if "session_id" in events.columns else None
    if sess is None or sess.isna().all():
        # Without sessions, a calendar day stands in for a visit.
        ev["s"] = ev["timestamp"].dt.floor("D").astype("int64").astype(str)
    else:
        ev["s"] = sess[weights > 0].astype("string").fillna("")
    g = ev.groupby(["user_id", "item_id", "s", "event_type"], sort=False, observed=True).agg(
        w=("w", "first"), q=("q", "sum"), t=("timestamp", "max")
    )
    value = g["w"].to_numpy(dtype=np.float64)
    if params.quantity_weight:
        q = np.minimum(g["q"].to_numpy(dtype=np.float64), params.quantity_cap)
        value = value * (1.0 + params.quantity_weight * np.log(q))
    if params.recency_half_life_days:
        ref = pd.Timestamp(reference_time)
        age = (ref - g["t"]).dt.total_seconds().to_numpy() / 86400.0
        value = value * np.power(0.5, np.clip(age, 0.0, None) / params.recency_half_life_days)
    out = pd.DataFrame(
        {
            "user_id": g.index.get_level_values(0),
            "item_id": g.index.get_level_values(1),
            "confidence": value,
        }
    )
    summed = out.groupby(["user_id", "item_id"], sort=False)["confidence"].sum()
    return summed.reset_index()


def bm25_idf(item_index: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
    """Per-item BM25 idf over a training matrix given by the item index of each nonzero."""
    df = np.bincount(item_index, minlength=n_items).astype(np.float64)
    return (np.log(float(n_users)) - np.log1p(df)).astype(np.float32)


def transform_weights(
    user_index: np.ndarray,
    item_index: np.ndarray,
    confidence: np.ndarray,
    params: ConfidenceParams,
    idf: np.ndarray,
) -> np.ndarray:
    """Apply the configured transform (BM25 or none) and ``alpha`` to raw confidences.

    Parameters
    ----------
    user_index, item_index, confidence:
        Nonzeros of the raw matrix (same length). Row lengths are summed from these rows, so a
        single user's rows give the same weights as inside the full matrix.
    params:
        Transform settings, including the training ``bm25_avg_length``.
    idf:
        Per-item idf from :func:`bm25_idf` (ignored without BM25).

    Returns
    -------
    numpy.ndarray
        float32 weights, as ALS sees them.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    if params.transform == "bm25":
        _, inverse = np.unique(user_index, return_inverse=True)
        row_sums = np.bincount(inverse, weights=conf)
        norm = (1.0 - params.bm25_b) + params.bm25_b * row_sums[inverse] / params.bm25_avg_length
        k1 = params.bm25_k1
        conf = conf * (k1 + 1.0) / (k1 * norm + conf) * idf[item_index].astype(np.float64)
    return (conf * params.alpha).astype(np.float32)


def solve_user_vector(
    item_factors: np.ndarray,
    item_index: np.ndarray,
    weights: np.ndarray,
    regularization: float,
    gram: np.ndarray | None = None,
) -> np.ndarray:
    """Exact ALS least-squares user vector for the given (item, weight) rows.

    Solves ``(YᵀY + λI + Σ (c-1) y yᵀ) x = Σ c y`` — the same normal equations implicit uses.

    Parameters
    ----------
    item_factors:
        ``(n_items, f)`` ALS item factors.
    item_index, weights:
        The user's nonzeros (after :func:`transform_weights`).
    regularization:
        ALS λ.
    gram:
        Precomputed ``YᵀY`` (float64) to avoid recomputing it per user.

    Returns
    -------
    numpy.ndarray
        float32 vector of length f (zeros when the user has no rows).

    Raises
    ------
    InvalidArgument
        If an item index is out of range.
    """
    y_all = np.asarray(item_factors, dtype=np.float64)
    n_items, f = y_all.shape
    idx = np.asarray(item_index, dtype=np.int64)
    if idx.size == 0:
        return np.zeros(f, dtype=np.float32)
    if idx.min() < 0 or idx.max() >= n_items:
        raise InvalidArgument("item index out of range for the item factors", field="item_index")
    c = np.asarray(weights, dtype=np.float64)
    y = y_all[idx]
    yty = gram if gram is not None else y_all.T @ y_all
    a = yty + regularization * np.eye(f) + (y * (c - 1.0)[:, None]).T @ y
    b = (y * c[:, None]).sum(axis=0)
    return np.linalg.solve(a, b).astype(np.float32)
