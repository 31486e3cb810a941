"""ALS with the ``implicit`` library, plus an exact user re-solve for consistent fold-in."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from training.ranking import map_blocks, one_thread


def _exact_user_factors(
    weights: sp.csr_matrix, item_factors: np.ndarray, regularization: float
) -> np.ndarray:
    # implicit's last half-step solves users against the previous item factors (and with CG);
    # re-solving exactly against the final item factors makes the stored user vectors equal to
    # what online fold-in computes from the same rows (recsys.confidence.solve_user_vector:
    # the same normal equations, here for a batch of shoppers at a time, batches side by side
    # on the idle cores).
    items64 = np.ascontiguousarray(item_factors, dtype=np.float64)
    f = items64.shape[1]
    base = items64.T @ items64 + regularization * np.eye(f)
    w = sp.csr_matrix(weights)
    lens = np.diff(w.indptr)
    out = np.zeros((w.shape[0], f), dtype=np.float32)
    # Shoppers in order of row count, so that a batch pads its rows to similar lengths.
    order = np.argsort(lens, kind="stable")
    order = order[lens[order] > 0]

    def solve(lo: int) -> None:
        users = order[lo : lo + USER_BATCH]
        out[users] = _solve_batch(w, users, lens[users], items64, base)

    with one_thread():
        map_blocks(solve, range(0, len(order), USER_BATCH))
    return out


# Shoppers solved together: (batch x rows x factors) float64 stays a few MB.
USER_BATCH = 256


def _solve_batch(
    w: sp.csr_matrix, users: np.ndarray, lens: np.ndarray, items64: np.ndarray, base: np.ndarray
) -> np.ndarray:
    """Solve ``(YᵀY + λI + Σ (c-1) y yᵀ) x = Σ c y`` for each shopper of a batch at once."""
    n, width = len(users), int(lens.max())
    col = np.arange(width)[None, :] < lens[:, None]
    flat = (w.indptr[users][:, None] + np.arange(width)[None, :])[col]
    idx = np.zeros((n, width), dtype=np.int64)
    c = np.ones((n, width), dtype=np.float64)  # padding rows: c - 1 = 0 and y = 0
    idx[col] = w.indices[flat]
    c[col] = w.data[flat]
    y = items64[idx] * col[:, :, None]
    a = base + np.matmul((y * (c - 1.0)[:, :, None]).transpose(0, 2, 1), y)
    b = np.einsum("bl,blf->bf", c, y)
    return np.linalg.solve(a, b[:, :, None])[:, :, 0].astype(np.float32)


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
        Progress bars for the iterations.

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
        user_factors = _exact_user_factors(weights, item_factors, regularization)
    return user_factors, item_factors
