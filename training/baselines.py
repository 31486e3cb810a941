"""Reference baselines evaluated in the same run as the models.

popularity (last N days), item-kNN (implicit's BM25Recommender), personal top-frequency and
plain implicit ALS at its defaults, all fitted on the purchase-session count matrix exactly as
the reference scripts do, so their numbers can be compared with the published ones.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.als import AlternatingLeastSquares
from implicit.nearest_neighbours import BM25Recommender
from implicit.utils import ParameterWarning
from threadpoolctl import threadpool_limits

from training.evaluation import Scorer


def popularity_vector(purchase_ages: pd.DataFrame, n_items: int, days: float) -> np.ndarray:
    """Distinct purchase sessions per item within the last ``days`` of the window."""
    recent = purchase_ages[purchase_ages["age_days"] < days]
    return np.bincount(recent["i"].to_numpy(), minlength=n_items).astype(np.float32)


def baseline_scorers(
    purchases: sp.csr_matrix,
    purchase_ages: pd.DataFrame,
    popularity_days: float,
    seed: int,
    threads: int = 0,
) -> dict[str, Scorer]:
    """Build the four baseline scorers.

    Parameters
    ----------
    purchases:
        (users x items) count of distinct purchase sessions before the cut.
    purchase_ages:
        Purchase sessions with their age in days (columns ``u``, ``i``, ``age_days``).
    popularity_days:
        Window of the popularity baseline.
    seed:
        Random state of the default ALS.
    threads:
        implicit threads.

    Returns
    -------
    dict
        ``"baseline/popularity"`` etc. -> scorer.
    """
    n_items = purchases.shape[1]
    pop = popularity_vector(purchase_ages, n_items, popularity_days)
    # Fill after the shopper's own items, in popularity order: ranks in (0, 0.5).
    pop_rank = 0.5 * (np.argsort(np.argsort(pop, kind="stable"), kind="stable") + 1) / (n_items + 2)
    # Ties among own items break by item index, as in the reference script.
    index_order = (0.5 * (1.0 - np.arange(n_items) / n_items)).astype(np.float32)
    knn = BM25Recommender(K=100, num_threads=threads)
    with warnings.catch_warnings():
        # BM25Recommender hands its own COO-weighted matrix to the base class, which warns.
        warnings.simplefilter("ignore", category=ParameterWarning)
        knn.fit(purchases.tocsr(), show_progress=False)
    sim = knn.similarity.tocsr()
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(random_state=seed, num_threads=threads)
        als.fit(purchases, show_progress=False)
    a_users = np.asarray(als.user_factors)
    a_items = np.asarray(als.item_factors)

    def popularity(users: np.ndarray) -> np.ndarray:
        return np.tile(pop, (len(users), 1))

    def item_knn(users: np.ndarray) -> np.ndarray:
        return np.asarray((purchases[users] @ sim).todense(), dtype=np.float32)

    fill = pop_rank.astype(np.float32)

    def top_frequency(users: np.ndarray) -> np.ndarray:
        # The popularity fill for every shopper, then each shopper's own items written over
        # it: one pass over the block instead of densifying the purchases.
        out = np.tile(fill, (len(users), 1))
        own = sp.csr_matrix(purchases[users])
        rows = np.repeat(np.arange(len(users)), np.diff(own.indptr))
        bought = own.data > 0
        cols = own.indices[bought]
        out[rows[bought], cols] = (own.data[bought] + index_order[cols]).astype(np.float32)
        return out

    def als_default(users: np.ndarray) -> np.ndarray:
        return a_users[users] @ a_items.T

    return {
        "baseline/popularity": popularity,
        "baseline/item_knn": item_knn,
        "baseline/top_frequency": top_frequency,
        "baseline/als_default": als_default,
    }
