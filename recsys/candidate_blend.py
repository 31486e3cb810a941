"""The evaluated buy-again + discovery blend, applied to a candidate set at request time.

Offline, :func:`recsys.hybrid.blend_scores` blends full-catalog score vectors, each divided by
its largest absolute value over the catalog. Online there is no full-catalog vector (that is
the point of the index), so :func:`blend_candidates` takes the same parts restricted to the
candidates together with the scale of each part:

* buy-again: the largest buy-again score of the shopper (exact: every purchase is known);
* trend: the largest trend score of the catalog (exact: precomputed);
* ALS / two-tower: the largest absolute score among the candidates, which is the catalog's
  whenever the best item's score outweighs the most negative one (the usual case for a
  shopper's own vector, whose nearest items are what the index returns).

With candidates = the whole catalog and those scales it equals ``blend_scores`` exactly (a test
checks this), so the served ranking is the evaluated one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from recsys.hybrid import HybridParams

# Discovery sources retrieved through a vector index; "trend" is a per-item score instead.
VECTOR_SOURCES = ("als", "two_tower")
TREND = "trend"
DEFAULT_VARIANT = "default"


def variant_params(variant: str, bundle_blend: HybridParams, available: set[str]) -> HybridParams:
    """The blend a variant serves.

    Parameters
    ----------
    variant:
        ``"default"``/``"hybrid"`` (the bundle's own blend), ``"als"`` or ``"two_tower"``
        (that retriever alone, with the bundle's buy-again weight); any other name is served
        like ``"default"``.
    bundle_blend:
        ``manifest.hybrid``.
    available:
        Discovery sources the bundle can serve (``"als"``, ``"trend"``, maybe ``"two_tower"``).

    Returns
    -------
    HybridParams
        Weights restricted to available sources (``{"als": 1}`` if none would remain).
    """
    if variant in VECTOR_SOURCES and variant in available:
        weights: dict[str, float] = {variant: 1.0}
    else:
        weights = {
            n: w for n, w in bundle_blend.discovery_weights.items() if w > 0 and n in available
        }
    if not any(n in VECTOR_SOURCES for n in weights):
        # A blend with no personal source would not be a personalised list.
        weights = {"als": 1.0, **weights}
    return bundle_blend.model_copy(update={"discovery_weights": weights})


@dataclass(frozen=True)
class BlendParts:
    """A blended candidate list and the share of each part (for reason codes)."""

    total: np.ndarray
    repeat: np.ndarray
    personal: np.ndarray
    trend: np.ndarray


def blend_candidates(
    repeat: np.ndarray,
    repeat_scale: float,
    discovery: Mapping[str, np.ndarray],
    scales: Mapping[str, float],
    params: HybridParams,
) -> BlendParts:
    """Blend per-candidate parts exactly as :func:`recsys.hybrid.blend_scores` does.

    Parameters
    ----------
    repeat:
        Buy-again score per candidate (0 for never bought).
    repeat_scale:
        Largest buy-again score of the shopper (0 if none).
    discovery:
        Source -> score per candidate.
    scales:
        Source -> largest absolute score of that source over the catalog (see module notes).
    params:
        Blend weights.

    Returns
    -------
    BlendParts
        float64 arrays aligned with the candidates.
    """
    n = repeat.shape[0]
    used = {s: w for s, w in params.discovery_weights.items() if s in discovery and w > 0}
    total_w = sum(used.values())
    # Parts absent from the blend stay None instead of arrays of zeros: adding an exact zero
    # changes no value, so skipping those additions gives the same floats with fewer passes.
    personal: np.ndarray | None = None
    trend: np.ndarray | None = None
    for source, w in used.items():
        scale = scales.get(source, 0.0)
        if scale <= 0:
            continue
        part = (w / total_w) * np.asarray(discovery[source], dtype=np.float64) / scale
        if source == TREND:
            trend = part if trend is None else trend + part
        else:
            personal = part if personal is None else personal + part
    rw = params.repeat_weight
    rep = rw * np.asarray(repeat, np.float64) / repeat_scale if repeat_scale > 0 else None
    disc_w = 1.0 - rw
    disc = personal if trend is None else trend if personal is None else personal + trend
    if disc is None:
        total = np.zeros(n) if rep is None else rep.copy()
    else:
        total = disc_w * disc if rep is None else rep + disc_w * disc
    return BlendParts(
        total=total,
        repeat=np.zeros(n) if rep is None else rep,
        personal=np.zeros(n) if personal is None else disc_w * personal,
        trend=np.zeros(n) if trend is None else disc_w * trend,
    )
