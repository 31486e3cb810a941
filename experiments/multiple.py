"""Holm's step-down correction for comparing several variants with one control."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def holm(p_values: npt.ArrayLike) -> np.ndarray:
    """Holm-adjusted p-values (same order as given), controlling the family-wise error.

    The ``k``-th smallest p-value of ``m`` is multiplied by ``m − k + 1``, then made monotone
    so that a smaller raw p-value never gets a larger adjusted one; capped at 1.
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.shape[0]
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.minimum(scaled, 1.0)
    return out
