"""ALS fold-in: a user vector computed at request time from (item, confidence) rows.

A shopper who bought something a moment ago must see the effect on the next call, long
before the next retraining. ALS makes this cheap: with the item factors ``Y`` fixed, the user
vector is the solution of one ``f x f`` linear system (the same normal equations the trainer's
``implicit`` ALS solves per user). :class:`FoldIn` precomputes ``YᵀY + λI`` once per bundle
and gathers only the user's rows per call, so a fold-in costs tens of microseconds rather than
a pass over the whole catalog.

Raw confidences come from the same scheme the trainer used (:mod:`recsys.confidence`), so
folding in a trained user's own training rows reproduces their trained vector.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

import numpy as np

from fairshelf.errors import InvalidArgument
from recsys.confidence import ConfidenceParams

_DAY_SECONDS = 86400.0


def event_confidence(
    rows: Iterable[tuple[int, str, datetime, int]],
    params: ConfidenceParams,
    reference_time: datetime,
) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate a few recent events into one raw confidence per item.

    Mirrors :func:`recsys.confidence.pair_confidence` for one shopper without pandas (the
    request path sees tens of events, where a dict beats a DataFrame by orders of magnitude):
    repeats of one event type on one item in one calendar day count once, quantities are
    summed within that group, and age is measured back from ``reference_time`` (events after
    it, the usual case for events logged since training, count fully).

    Parameters
    ----------
    rows:
        ``(item_index, event_type, timestamp, quantity)`` per event; timestamps timezone-aware.
    params:
        The bundle's confidence parameters.
    reference_time:
        The bundle's recency reference time (timezone-aware).

    Returns
    -------
    (item_index, raw_confidence):
        int64 and float64 arrays, one entry per item with a positive confidence, in order of
        first appearance.
    """
    ref = reference_time.timestamp()
    groups: dict[tuple[int, str, int], list[float]] = {}
    for item, event_type, ts, quantity in rows:
        w = params.event_weights.get(event_type, 0.0)
        if w <= 0.0:
            continue
        t = ts.timestamp()
        key = (item, event_type, math.floor(t / _DAY_SECONDS))
        g = groups.get(key)
        if g is None:
            groups[key] = [w, float(max(quantity, 1)), t]
        else:
            g[1] += float(max(quantity, 1))
            g[2] = max(g[2], t)
    per_item: dict[int, float] = {}
    for (item, _, _), (w, q, t) in groups.items():
        value = w
        if params.quantity_weight:
            value *= 1.0 + params.quantity_weight * math.log(min(q, params.quantity_cap))
        if params.recency_half_life_days:
            age = max(ref - t, 0.0) / _DAY_SECONDS
            value *= 0.5 ** (age / params.recency_half_life_days)
        per_item[item] = per_item.get(item, 0.0) + value
    items = np.fromiter(per_item.keys(), dtype=np.int64, count=len(per_item))
    conf = np.fromiter(per_item.values(), dtype=np.float64, count=len(per_item))
    return items, conf


def merge_rows(
    items_a: np.ndarray, conf_a: np.ndarray, items_b: np.ndarray, conf_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sum two sets of (item, raw confidence) rows, as one longer event history would.

    Returns
    -------
    (item_index, raw_confidence):
        Sorted unique item indices and their summed confidences.
    """
    items = np.concatenate([np.asarray(items_a, np.int64), np.asarray(items_b, np.int64)])
    conf = np.concatenate([np.asarray(conf_a, np.float64), np.asarray(conf_b, np.float64)])
    if items.size == 0:
        return items, conf
    uniq, inverse = np.unique(items, return_inverse=True)
    return uniq, np.bincount(inverse, weights=conf, minlength=uniq.size)


class FoldIn:
    """Solve ALS user vectors against fixed item factors.

    Parameters
    ----------
    item_factors:
        ``(n_items, f)`` ALS item factors of the bundle.
    params:
        The bundle's confidence parameters (transform, ``alpha``, ``regularization``).
    idf:
        ``(n_items,)`` BM25 idf per item from the bundle; required when
        ``params.transform == "bm25"``.

    Raises
    ------
    InvalidArgument
        If the factors are not a non-empty 2-D array or the idf is missing or mis-sized.
    """

    def __init__(
        self,
        item_factors: np.ndarray,
        params: ConfidenceParams,
        idf: np.ndarray | None = None,
    ) -> None:
        y = np.ascontiguousarray(item_factors, dtype=np.float32)
        if y.ndim != 2 or y.shape[0] == 0 or y.shape[1] == 0:
            raise InvalidArgument(f"item factors must be a non-empty 2-D array, got {y.shape}")
        if params.transform == "bm25" and (idf is None or len(idf) != y.shape[0]):
            raise InvalidArgument("BM25 fold-in needs one idf value per item", field="idf")
        self.params = params
        self.n_items, self.factors = y.shape
        self._y = y
        self._idf = (
            np.ones(self.n_items, np.float32)
            if idf is None
            else np.ascontiguousarray(idf, np.float32)
        )
        y64 = y.astype(np.float64)
        # YᵀY + λI is shared by every user; computing it once per bundle is what makes a
        # request-time solve cheap.
        self._base = y64.T @ y64 + params.regularization * np.eye(self.factors)
        # Z = Y (YᵀY + λI)⁻¹, one row per item, turns a user with r rows into an r x r solve
        # (Woodbury identity) instead of f x f; float32 halves its memory.
        self._z = np.ascontiguousarray(np.linalg.solve(self._base, y64.T).T, dtype=np.float32)

    def weights(self, item_index: np.ndarray, raw_confidence: np.ndarray) -> np.ndarray:
        """Turn one user's raw confidences into ALS weights (transform and ``alpha``).

        Parameters
        ----------
        item_index, raw_confidence:
            The user's rows; row sums for BM25 are taken over exactly these rows (the same
            result as :func:`recsys.confidence.transform_weights` on this one user).

        Returns
        -------
        numpy.ndarray
            float32 weights.
        """
        idx = np.asarray(item_index, dtype=np.int64)
        conf = np.asarray(raw_confidence, dtype=np.float64)
        p = self.params
        if p.transform == "bm25":
            # transform_weights for a single row: every entry shares the one row sum.
            norm = (1.0 - p.bm25_b) + p.bm25_b * float(conf.sum()) / p.bm25_avg_length
            conf = conf * (p.bm25_k1 + 1.0) / (p.bm25_k1 * norm + conf) * self._idf[idx]
        return (conf * p.alpha).astype(np.float32)

    def solve(self, item_index: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Exact least-squares user vector for rows already turned into ALS weights.

        Solves ``(YᵀY + λI + Σ (c-1) y yᵀ) x = Σ c y`` over the user's rows only: for fewer
        rows than factors as an ``r x r`` system through the Woodbury identity, otherwise
        directly.

        Parameters
        ----------
        item_index, weights:
            The user's nonzeros.

        Returns
        -------
        numpy.ndarray
            float32 vector of length ``f`` (zeros when there are no rows).

        Raises
        ------
        InvalidArgument
            If an item index is out of range or the lengths differ.
        """
        idx = np.asarray(item_index, dtype=np.int64)
        c = np.asarray(weights, dtype=np.float64)
        if idx.shape != c.shape:
            raise InvalidArgument("item_index and weights differ in length", field="weights")
        if idx.size == 0:
            return np.zeros(self.factors, dtype=np.float32)
        if idx.min() < 0 or idx.max() >= self.n_items:
            raise InvalidArgument("item index out of range for the item factors", field="item")
        y = self._y[idx].astype(np.float64)
        d = c - 1.0
        if idx.size < self.factors:
            # (B + Yᵀ D Y)⁻¹ Yᵀc with B = YᵀY + λI and Z = Y B⁻¹ (push-through Woodbury form,
            # valid when some c = 1 makes D singular):  x = Zᵀ (c - w),
            # w = (I + D K)⁻¹ D K c,  K = Y Zᵀ  (r x r).
            z = self._z[idx].astype(np.float64)
            k = y @ z.T
            m = np.eye(idx.size) + d[:, None] * k
            w = np.linalg.solve(m, d * (k @ c))
            return ((c - w) @ z).astype(np.float32)
        a = self._base + (y * d[:, None]).T @ y
        return np.linalg.solve(a, c @ y).astype(np.float32)

    def vector(self, item_index: np.ndarray, raw_confidence: np.ndarray) -> np.ndarray:
        """Fold in one user from raw confidences: :meth:`weights` then :meth:`solve`."""
        idx = np.asarray(item_index, dtype=np.int64)
        if idx.size == 0:
            return np.zeros(self.factors, dtype=np.float32)
        return self.solve(idx, self.weights(idx, raw_confidence))
