"""ALS fold-in (recsys.fold_in) against implicit's own solve and the trainer's confidence code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from implicit.cpu.als import AlternatingLeastSquares

from fairshelf.errors import InvalidArgument
from recsys.confidence import (
    ConfidenceParams,
    bm25_idf,
    pair_confidence,
    solve_user_vector,
    transform_weights,
)
from recsys.fold_in import FoldIn, event_confidence, merge_rows


@pytest.fixture(scope="module")
def trained() -> tuple[AlternatingLeastSquares, sp.csr_matrix]:
    rng = np.random.default_rng(0)
    x = sp.random(40, 60, density=0.12, random_state=1, format="csr", dtype=np.float32)
    x.data = rng.uniform(1.0, 6.0, x.data.size).astype(np.float32)
    model = AlternatingLeastSquares(
        factors=8, regularization=0.3, alpha=2.0, iterations=4, use_cg=False, random_state=0
    )
    model.fit(x, show_progress=False)
    return model, x


def test_fold_in_equals_implicit_recalculate_user(
    trained: tuple[AlternatingLeastSquares, sp.csr_matrix],
) -> None:
    model, x = trained
    fold = FoldIn(
        model.item_factors, ConfidenceParams(transform="none", regularization=0.3, alpha=2.0)
    )
    for u in range(x.shape[0]):
        row = x[u]
        want = model.recalculate_user(u, row)
        got = fold.vector(row.indices, row.data)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_rows=st.integers(1, 12),
    transform=st.sampled_from(["bm25", "none"]),
)
def test_fold_in_reproduces_trainer_solve(seed: int, n_rows: int, transform: str) -> None:
    """Folding in a user's own rows gives the vector the trainer's solve gives them."""
    rng = np.random.default_rng(seed)
    n_items, f = 30, 6
    y = rng.normal(size=(n_items, f)).astype(np.float32)
    train_items = rng.integers(0, n_items, size=200)
    idf = bm25_idf(train_items, n_users=25, n_items=n_items)
    params = ConfidenceParams.model_validate(
        {"transform": transform, "regularization": 0.5, "alpha": 1.5, "bm25_avg_length": 8.0}
    )
    items = rng.choice(n_items, size=n_rows, replace=False)
    raw = rng.uniform(0.5, 10.0, size=n_rows)
    w = transform_weights(np.zeros(n_rows, np.int64), items, raw, params, idf)
    want = solve_user_vector(y, items, w, params.regularization)
    got = FoldIn(y, params, idf).vector(items, raw)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_fold_in_moves_toward_new_item() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=(50, 8)).astype(np.float32)
    fold = FoldIn(y, ConfidenceParams(transform="none", regularization=0.1))
    before = fold.vector(np.array([1, 2]), np.array([4.0, 4.0]))
    after = fold.vector(np.array([1, 2, 7]), np.array([4.0, 4.0, 8.0]))
    assert after @ y[7] > before @ y[7]


def test_empty_rows_give_zero_vector_and_bad_index_is_rejected() -> None:
    y = np.ones((5, 3), dtype=np.float32)
    fold = FoldIn(y, ConfidenceParams(transform="none"))
    assert not fold.vector(np.array([], np.int64), np.array([])).any()
    with pytest.raises(InvalidArgument):
        fold.vector(np.array([9]), np.array([1.0]))
    with pytest.raises(InvalidArgument):
        FoldIn(y, ConfidenceParams(transform="bm25"), idf=None)


def test_event_confidence_matches_pair_confidence() -> None:
    params = ConfidenceParams(quantity_weight=0.5, recency_half_life_days=10.0)
    ref = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        (3, "view", ref - timedelta(days=2, hours=1), 1),
        (3, "view", ref - timedelta(days=2, hours=2), 1),  # same day and type: counts once
        (3, "purchase", ref - timedelta(days=1), 3),
        (5, "click", ref - timedelta(days=20), 1),
        (5, "impression", ref - timedelta(days=1), 1),  # weight 0
        (8, "add_to_cart", ref + timedelta(hours=3), 1),  # after the reference: full weight
    ]
    items, conf = event_confidence(rows, params, ref)
    frame = pd.DataFrame(
        {
            "user_id": "u",
            "item_id": [r[0] for r in rows],
            "event_type": [r[1] for r in rows],
            "timestamp": pd.to_datetime([r[2] for r in rows], utc=True),
            "quantity": [r[3] for r in rows],
        }
    )
    want = pair_confidence(frame, params, pd.Timestamp(ref)).set_index("item_id")["confidence"]
    got = dict(zip(items.tolist(), conf.tolist(), strict=True))
    assert set(got) == set(want.index.tolist()) == {3, 5, 8}
    for item, value in got.items():
        assert value == pytest.approx(float(want[item]), rel=1e-9)


def test_merge_rows_sums_per_item() -> None:
    items, conf = merge_rows(
        np.array([4, 1]), np.array([1.0, 2.0]), np.array([1, 9]), np.array([0.5, 3.0])
    )
    assert items.tolist() == [1, 4, 9]
    assert conf.tolist() == [2.5, 1.0, 3.0]


@pytest.mark.parametrize("n_rows", [1, 3, 7, 8, 20])
def test_small_and_large_row_counts_solve_exactly(n_rows: int) -> None:
    """Fewer rows than factors go through Woodbury, more through the direct solve; weights of
    exactly 1 (a singular update) and below 1 (a negative update) included."""
    rng = np.random.default_rng(n_rows)
    y = rng.normal(size=(40, 8)).astype(np.float32)
    fold = FoldIn(y, ConfidenceParams(transform="none", regularization=0.2))
    items = rng.choice(40, size=n_rows, replace=False)
    w = rng.choice([1.0, 0.3, 2.5, 9.0], size=n_rows)
    want = solve_user_vector(y, items, w, 0.2)
    np.testing.assert_allclose(fold.solve(items, w), want, atol=1e-5, rtol=1e-4)
