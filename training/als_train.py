"""ALS with the ``implicit`` library, plus an exact user re-solve for consistent fold-in."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from recsys.confidence import solve_user_vector


def _exact_user_factors(
    weights: sp.csr_matrix, item_factors: np.ndarray, regularization: float, show_progress: bool
) -> np.ndarray:
    # implicit's last half-step solves users against the previous item factors (and with CG);
    # re-solving exactly against the final item factors makes the stored user vectors equal to
    # what online fold-in computes from the same rows.
    # Converted once: solve_user_vector would otherwise copy the whole matrix for every user.
    items64 = np.ascontiguousarray(item_factors, dtype=np.float64)
    gram = items64.T @ items64
    out = np.zeros((weights.shape[0], item_factors.shape[1]), dtype=np.float32)
    for u in tqdm(range(weights.shape[0]), desc="ALS user solve", disable=not show_progress):
        lo, hi = weights.indptr[u], weights.indptr[u + 1]
        if hi > lo:
            out[u] = solve_user_vector(
                items64, weights.indices[lo:hi], weights.data[lo:hi], regularization, gram
            )
    return out


def fit_als(
    weights: sp.csr_matrix,
    factors: int,
    regularization: float,
    iterations: int,
    seed: int,
    threads: int = 0,
    show_progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ALS on a (users x items) weight matrix.

    Parameters
    ----------
    weights:
        CSR matrix of confidences after transform (what ALS sees).
    factors, regularization, iterations:
        ALS hyperparameters.
    seed:
        Random state of the initialisation.
    threads:
        implicit threads (0 = all cores).
    show_progress:
        Progress bars for the iterations and the user solve.

    Returns
    -------
    (user_factors, item_factors):
        float32 arrays ``(n_users, factors)`` and ``(n_items, factors)``.
    """
    # implicit parallelises itself; a BLAS thread pool on top only oversubscribes the cores.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            iterations=iterations,
            random_state=seed,
            num_threads=threads,
        )
        model.fit(weights.astype(np.float32).tocsr(), show_progress=show_progress)
        item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        # Thousands of small solves: a BLAS thread pool costs more than it saves on each.
        user_factors = _exact_user_factors(weights, item_factors, regularization, show_progress)
    return user_factors, item_factors
