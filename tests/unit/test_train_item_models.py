"""EASE and RP3beta item-item models against independent closed forms on tiny matrices."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from training.item_models import binary_purchases, ease_matrix, rp3beta_matrix


def _purchases(seed: int = 0, users: int = 40, items: int = 9) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.6, size=(users, items)).astype(np.float32)
    counts[:, -1] = 0.0  # one item nobody bought
    return sp.csr_matrix(counts)


def test_ease_solves_each_items_ridge_regression() -> None:
    x = _purchases()
    lam = 5.0
    w = ease_matrix(x, lam, top_k=100).toarray()
    xb = (x.toarray() > 0).astype(np.float64)
    bought = np.flatnonzero(xb.sum(axis=0) > 0)
    for j in bought:
        # Regress item j's column on every other bought item's column (no intercept).
        others = bought[bought != j]
        a = xb[:, others]
        coef = np.linalg.solve(a.T @ a + lam * np.eye(len(others)), a.T @ xb[:, j])
        want = np.zeros(x.shape[1])
        want[others] = coef
        # Only positive weights are kept (the served matrix holds those).
        np.testing.assert_allclose(w[:, j], np.where(want > 0, want, 0.0), atol=1e-5)
    assert not w[-1].any() and not w[:, -1].any()
    assert np.all(np.diag(w) == 0)


def test_ease_keeps_the_top_k_weights_of_each_row() -> None:
    x = _purchases(seed=1)
    full = ease_matrix(x, 2.0, top_k=100).toarray()
    top2 = ease_matrix(x, 2.0, top_k=2).toarray()
    for i in range(x.shape[1]):
        kept = np.flatnonzero(top2[i])
        assert len(kept) <= 2
        np.testing.assert_allclose(top2[i, kept], full[i, kept], rtol=1e-6)
        if len(kept):
            assert top2[i, kept].min() >= np.sort(full[i])[-len(kept)] - 1e-7


def test_rp3beta_is_the_two_step_walk_divided_by_popularity() -> None:
    x = _purchases(seed=2)
    alpha, beta = 0.8, 0.4
    w = rp3beta_matrix(x, alpha, beta, top_k=100).toarray()
    xb = binary_purchases(x).toarray().astype(np.float64)
    deg_u = np.maximum(xb.sum(axis=1), 1)
    pop = xb.sum(axis=0)
    n = x.shape[1]
    want = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i == j or pop[i] == 0:
                continue
            walk = sum(
                (xb[u, i] / pop[i]) ** alpha * (xb[u, j] / deg_u[u]) ** alpha
                for u in range(xb.shape[0])
                if xb[u, i] and xb[u, j]
            )
            want[i, j] = walk / max(pop[j], 1) ** beta
    np.testing.assert_allclose(w, want, rtol=1e-5, atol=1e-7)


def test_empty_purchases_give_empty_matrices() -> None:
    x = sp.csr_matrix((5, 4), dtype=np.float32)
    assert ease_matrix(x, 1.0, 10).nnz == 0
    assert rp3beta_matrix(x, 1.0, 0.5, 10).nnz == 0
