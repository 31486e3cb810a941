"""recsys.confidence and training.als_train: weights by intent/recency, fold-in = stored vector."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.confidence import (
    ConfidenceParams,
    bm25_idf,
    pair_confidence,
    solve_user_vector,
    transform_weights,
)
from training.als_train import fit_als

torch.set_num_threads(1)
REF = pd.Timestamp("2026-03-01", tz="UTC")


def _events(rows: list[tuple[str, str, str, str, int, str]]) -> pd.DataFrame:
    df = pd.DataFrame(
        rows, columns=["user_id", "item_id", "event_type", "timestamp", "quantity", "session_id"]
    )
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df


def test_intent_order_and_session_dedup() -> None:
    ev = _events(
        [
            ("u", "view", "view", "2026-03-01", 1, "s1"),
            ("u", "click", "click", "2026-03-01", 1, "s1"),
            ("u", "cart", "add_to_cart", "2026-03-01", 1, "s1"),
            ("u", "buy", "purchase", "2026-03-01", 1, "s1"),
            ("u", "buy", "purchase", "2026-03-01", 1, "s1"),  # same session: counted once
            ("u", "imp", "impression", "2026-03-01", 1, "s1"),
        ]
    )
    c = pair_confidence(ev, ConfidenceParams(), REF).set_index("item_id")["confidence"]
    assert "imp" not in c.index
    assert c["buy"] > c["cart"] > c["click"] > c["view"] > 0
    assert c["buy"] == pytest.approx(1.0)


def test_recency_and_quantity() -> None:
    ev = _events(
        [
            ("u", "new", "purchase", "2026-03-01", 1, "a"),
            ("u", "old", "purchase", "2025-12-01", 1, "b"),  # 90 days before REF
            ("v", "bulk", "purchase", "2026-03-01", 50, "c"),
            ("v", "one", "purchase", "2026-03-01", 1, "d"),
        ]
    )
    p = ConfidenceParams(recency_half_life_days=90.0, quantity_weight=0.5)
    c = pair_confidence(ev, p, REF).set_index("item_id")["confidence"]
    assert c["old"] == pytest.approx(0.5 * c["new"])
    assert c["bulk"] == pytest.approx(1.0 + 0.5 * np.log(50.0))
    assert c["one"] == pytest.approx(1.0)


def _random_matrix(seed: int, n_users: int = 40, n_items: int = 30) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.2) * rng.integers(1, 5, (n_users, n_items))
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1  # nobody is empty
    return sp.csr_matrix(dense.astype(np.float64))


def test_bm25_on_one_user_matches_the_full_matrix() -> None:
    raw = _random_matrix(0).tocoo()
    idf = bm25_idf(raw.col, raw.shape[0], raw.shape[1])
    rows = np.bincount(raw.row, weights=raw.data)
    p = ConfidenceParams(bm25_avg_length=float(rows.mean()))
    full = transform_weights(raw.row, raw.col, raw.data, p, idf)
    mine = raw.row == 7
    alone = transform_weights(raw.row[mine], raw.col[mine], raw.data[mine], p, idf)
    assert np.allclose(full[mine], alone)


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 10_000))
def test_fold_in_of_training_rows_reproduces_the_user_vector(seed: int) -> None:
    raw = _random_matrix(seed).tocoo()
    idf = bm25_idf(raw.col, raw.shape[0], raw.shape[1])
    p = ConfidenceParams(bm25_avg_length=float(np.bincount(raw.row, weights=raw.data).mean()))
    w = sp.csr_matrix((transform_weights(raw.row, raw.col, raw.data, p, idf), (raw.row, raw.col)))
    users, items = fit_als(w, 8, p.regularization, 3, seed=seed, threads=1)
    for u in (0, 13, 39):
        lo, hi = w.indptr[u], w.indptr[u + 1]
        vec = solve_user_vector(items, w.indices[lo:hi], w.data[lo:hi], p.regularization)
        assert np.allclose(vec, users[u], atol=1e-4)
