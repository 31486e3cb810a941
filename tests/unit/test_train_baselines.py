"""training.baselines: the reference scripts' scoring, checked against their formula."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.baselines import baseline_scorers


def test_top_frequency_ranks_own_items_by_count_then_fills_by_popularity() -> None:
    rng = np.random.default_rng(0)
    counts = (rng.random((40, 30)) < 0.2) * rng.integers(1, 4, (40, 30))
    purchases = sp.csr_matrix(counts.astype(np.float32))
    coo = purchases.tocoo()
    ages = pd.DataFrame({"u": coo.row, "i": coo.col, "age_days": rng.random(coo.nnz) * 60})
    scorer = baseline_scorers(purchases, ages, 30.0, 0, 1)["baseline/top_frequency"]
    users = np.arange(40)
    got = scorer(users)
    n = 30
    pop = np.bincount(ages.loc[ages["age_days"] < 30, "i"], minlength=n).astype(np.float32)
    pop_rank = 0.5 * (np.argsort(np.argsort(pop, kind="stable"), kind="stable") + 1) / (n + 2)
    index_order = (0.5 * (1.0 - np.arange(n) / n)).astype(np.float32)
    own = counts.astype(np.float32)
    want = np.where(own > 0, own + index_order[None, :], pop_rank[None, :]).astype(np.float32)
    np.testing.assert_array_equal(got, want)
    # Every own item outranks every unbought one; among own items, more purchases first.
    for u in users:
        mine = np.flatnonzero(counts[u])
        if mine.size and mine.size < n:
            assert got[u, mine].min() > np.delete(got[u], mine).max()
