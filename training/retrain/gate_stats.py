"""Per-shopper ranking metrics and the paired bootstrap behind the retraining gate.

Pure functions over arrays: the gate feeds them lists and truths, and they are tested
against direct computations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def per_user_metrics(
    lists: np.ndarray, truth: list[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Recall@k and NDCG@k of each shopper (binary gains, the evaluation protocol's).

    Parameters
    ----------
    lists:
        ``(n_users, >= k)`` ranked item indices, best first.
    truth:
        Per shopper, the item indices they bought in the window (non-empty).
    k:
        List length.

    Returns
    -------
    (recall, ndcg):
        float64 arrays of length ``n_users``; recall divides hits by ``min(|truth|, k)``.
    """
    n = len(truth)
    recall = np.zeros(n)
    ndcg = np.zeros(n)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    for u in range(n):
        wanted = np.asarray(truth[u])
        hits = np.isin(lists[u, :k], wanted)
        denom = min(len(wanted), k)
        recall[u] = hits.sum() / denom
        ndcg[u] = float((hits * disc[: hits.size]).sum() / disc[:denom].sum())
    return recall, ndcg


@dataclass(frozen=True)
class PairedDifference:
    """Challenger minus champion on one metric, with a bootstrap interval of the mean."""

    champion: float
    challenger: float
    difference: float
    low: float
    high: float
    level: float


def paired_bootstrap(
    champion: np.ndarray,
    challenger: np.ndarray,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Percentile interval of the mean per-shopper difference, shoppers resampled in pairs.

    Resampling the same shoppers for both models keeps what they have in common (a hard
    shopper is hard for both) out of the interval, which is what makes it narrow enough to
    gate on a small window.

    Parameters
    ----------
    champion, challenger:
        Per-shopper values of one metric, aligned.
    n_resamples:
        Bootstrap resamples.
    level:
        Coverage of the interval.
    seed:
        Seed of the resampling (same seed, same interval).

    Raises
    ------
    ValueError
        If the arrays are empty or not aligned.
    """
    a = np.asarray(champion, dtype=np.float64)
    b = np.asarray(challenger, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired_bootstrap needs two aligned, non-empty arrays")
    diff = b - a
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, diff.size, size=(n_resamples, diff.size))
    means = diff[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return PairedDifference(
        champion=float(a.mean()),
        challenger=float(b.mean()),
        difference=float(diff.mean()),
        low=float(low),
        high=float(high),
        level=level,
    )
