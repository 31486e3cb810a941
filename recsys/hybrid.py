"""The buy-again + discovery blend, shared by offline evaluation and online serving.

Retail shoppers re-buy the same products often, so the default ranking mixes a per-user
"buy again" score (recency-weighted purchase frequency) with discovery scores from the
retrieval models (ALS, two-tower). Each part is scaled per user to a top value of 1 so that the
blend weight means the same for every shopper. Evaluation and serving both call
:func:`blend_scores`, so that the ranking served is the ranking that was measured. With the
already-purchased items excluded, the blend reduces to the discovery part ("novel" mode).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fairshelf.errors import InvalidArgument


class HybridParams(BaseModel):
    """Blend parameters, chosen on a validation cut before the evaluation cut.

    Parameters
    ----------
    repeat_weight:
        Weight of the buy-again part in [0, 1]; discovery gets ``1 - repeat_weight``.
    repeat_half_life_days:
        A past purchase loses half its buy-again weight every this many days.
    repeat_item_exponent:
        Buy-again scores are multiplied by ``r_i ** exponent``, where ``r_i`` is the smoothed
        share of item ``i``'s buyers who bought it in more than one session (0 = off): staples
        are re-bought, a one-off purchase rarely is.
    exclude_purchased:
        Leave the shopper's bought items out of every list, whatever the request asks: chosen
        on validation when shoppers of the data do not re-buy (ratings, one-off purchases).
    discovery_weights:
        Relative weight of each discovery source (e.g. ``{"als": 0.7, "two_tower": 0.3}``);
        normalised to sum to 1 when blending.
    """

    model_config = ConfigDict(frozen=True)

    repeat_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    repeat_half_life_days: float = Field(default=90.0, gt=0.0)
    repeat_item_exponent: float = Field(default=0.0, ge=0.0)
    exclude_purchased: bool = False
    discovery_weights: dict[str, float] = Field(default_factory=lambda: {"als": 1.0})


def repeat_score_from_ages(ages_days: np.ndarray, half_life_days: float) -> np.ndarray:
    """Buy-again contribution of purchases made ``ages_days`` ago (one value per purchase)."""
    ages = np.clip(np.asarray(ages_days, dtype=np.float64), 0.0, None)
    return np.power(0.5, ages / half_life_days)


_F32_MAX = float(np.finfo(np.float32).max)


def scaled_rows(scores: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """``weight`` times each row divided by its largest absolute value (zero rows stay zero).

    The weight and the row's scale are folded into one factor per row, and the largest
    absolute value comes from two reductions rather than ``abs(scores).max()``: one pass and
    one temporary over a block of thousands of shoppers by the whole catalog, instead of four.
    """
    x = np.asarray(scores, dtype=np.float32)
    if x.shape[-1] == 0:
        return np.zeros(x.shape, dtype=np.float32)
    if x.ndim == 2 and x.shape[0] > 1 and x.strides[0] == 0:
        # One row seen by every shopper (a broadcast view, e.g. the trend): scale it once.
        return np.broadcast_to(scaled_rows(x[0], weight), x.shape)
    top = np.maximum(x.max(axis=-1, keepdims=True), -x.min(axis=-1, keepdims=True))
    top = top.astype(np.float64)
    factor = np.divide(weight, top, out=np.zeros_like(top), where=top > 0)
    if np.all(factor <= _F32_MAX):
        return x * factor.astype(np.float32)
    # Rows of subnormal scores, whose 1 / scale does not fit a float32: scale in float64.
    return (x.astype(np.float64) * factor).astype(np.float32)


def blend_scores(
    repeat: np.ndarray,
    discovery: Mapping[str, np.ndarray],
    params: HybridParams,
) -> np.ndarray:
    """Blend buy-again and discovery scores over the full catalog.

    Parameters
    ----------
    repeat:
        ``(n_items,)`` or ``(n_users, n_items)`` buy-again scores (0 for never-bought items).
    discovery:
        Source name -> array of the same shape (e.g. ALS ``u·v``). Sources missing from
        ``params.discovery_weights`` are ignored; sources weighted there but absent here are
        skipped and the remaining weights renormalised.
    params:
        Blend weights.

    Returns
    -------
    numpy.ndarray
        float32 blended scores, same shape as ``repeat``.

    Raises
    ------
    InvalidArgument
        If shapes differ or no weighted discovery source is given while discovery has weight.
    """
    rep = np.asarray(repeat, dtype=np.float32)
    used = {name: w for name, w in params.discovery_weights.items() if name in discovery and w > 0}
    total_w = sum(used.values())
    arrays = {}
    for name in used:
        arr = np.asarray(discovery[name], dtype=np.float32)
        if arr.shape != rep.shape:
            raise InvalidArgument(f"discovery source {name!r} has shape {arr.shape} != {rep.shape}")
        arrays[name] = arr
    if total_w == 0 and params.repeat_weight < 1.0:
        raise InvalidArgument("no weighted discovery source given to the hybrid blend")
    out = scaled_rows(rep, params.repeat_weight)
    if not out.flags.writeable:
        out = out.copy()
    for name, arr in arrays.items():
        out += scaled_rows(arr, (1.0 - params.repeat_weight) * used[name] / total_w)
    return out
