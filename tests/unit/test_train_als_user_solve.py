"""The trainer's batched ALS user re-solve equals online fold-in, shopper by shopper."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.confidence import solve_user_vector
from training.als_train import USER_BATCH, _exact_user_factors


def test_batched_solve_equals_the_fold_in_of_each_shopper() -> None:
    rng = np.random.default_rng(0)
    # More shoppers than one batch, rows of very different lengths, some shoppers empty.
    counts = rng.integers(0, 40, size=USER_BATCH * 2 + 17)
    counts[::9] = 0
    rows, cols = [], []
    for u, n in enumerate(counts):
        rows += [u] * int(n)
        cols += rng.choice(300, size=int(n), replace=False).tolist()
    data = rng.random(len(rows)) * 5 + 0.5
    weights = sp.csr_matrix((data, (rows, cols)), shape=(len(counts), 300))
    items = (rng.normal(size=(300, 8)) * 0.3).astype(np.float32)
    got = _exact_user_factors(weights, items, 0.1)
    items64 = items.astype(np.float64)
    gram = items64.T @ items64
    for u in range(len(counts)):
        lo, hi = weights.indptr[u], weights.indptr[u + 1]
        want = (
            solve_user_vector(items64, weights.indices[lo:hi], weights.data[lo:hi], 0.1, gram)
            if hi > lo
            else np.zeros(8, dtype=np.float32)
        )
        np.testing.assert_allclose(got[u], want, rtol=1e-5, atol=1e-6)
