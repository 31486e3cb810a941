"""Two-tower early stopping on the purchases after the window (the trainer's validation fit)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tests.unit.test_train_two_tower import GROUP, N_ITEMS, cfg, planted
from training.evaluation import EvalSplit, evaluate, make_split
from training.two_tower_check import future_check
from training.two_tower_data import TwoTowerData
from training.two_tower_model import TwoTower
from training.two_tower_train import (
    encode_items,
    encode_users,
    train_two_tower,
    warm_start_wins,
)

torch.set_num_threads(1)


def later_purchases(data: TwoTowerData, seed: int = 5) -> dict[str, EvalSplit]:
    """Each shopper buys 4 items of their own group after the window, some bought before."""
    n_users = data.final_histories.shape[0]
    rng = np.random.default_rng(seed)
    rows = np.repeat(data.row_user, np.diff(data.target_ptr))
    bought = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, data.target_item)), shape=(n_users, N_ITEMS)
    )
    bought.sum_duplicates()
    users, items = [], []
    for u in range(n_users):
        g = u % (N_ITEMS // GROUP)
        for it in rng.choice(np.arange(g * GROUP, (g + 1) * GROUP), 4, replace=False):
            users.append(u)
            items.append(int(it))
    known = np.ones(N_ITEMS, dtype=bool)
    return {
        mode: make_split(np.array(users), np.array(items), bought, known, mode)  # type: ignore[arg-type]
        for mode in ("all", "novel")
    }


def test_shares_pair_shoppers_and_sum_to_the_evaluated_recalls() -> None:
    data, cats = planted()
    splits = later_purchases(data)
    model = TwoTower(N_ITEMS, cats, np.zeros(N_ITEMS, np.int64), 8, 6).eval()
    shares = future_check(splits, data.final_histories, 0, 0)(model)
    assert shares.shape == (splits["all"].n_users + splits["novel"].n_users,)
    items = encode_items(model, N_ITEMS)
    users = encode_users(model, data.final_histories)
    expected = sum(
        evaluate(lambda u: users[u] @ items.T, split, [20])["recall@20"]
        for split in splits.values()
    )
    assert shares.sum() == pytest.approx(expected, abs=1e-9)
    # A sample of the shoppers: the same shoppers for every model, so entries pair.
    check = future_check(splits, data.final_histories, 30, 0)
    assert check(model).shape == (60,)
    assert np.array_equal(check(model), check(model))


def test_the_check_picks_the_epoch_and_nobody_is_held_out() -> None:
    data, cats = planted()
    splits = later_purchases(data)
    inner = future_check(splits, data.final_histories, 0, 0)
    seen: list[float] = []

    def check(model: TwoTower) -> np.ndarray:
        out = inner(model)
        seen.append(float(out.sum()))
        return out

    c = cfg(epochs=6, patience=10, learning_rate=0.2)
    model = train_two_tower(
        data, N_ITEMS, cats, np.zeros(N_ITEMS, np.int64), c, 0, False, check=check
    )
    assert len(seen) == 6
    assert model.best_epochs == int(np.argmax(seen)) + 1
    # The kept state is that epoch's: its check score is the best one seen.
    assert float(inner(model).sum()) == pytest.approx(max(seen))
    # Every shopper trained: the check's shoppers are all of them, none was left out.
    trained = train_two_tower(
        data, N_ITEMS, cats, np.zeros(N_ITEMS, np.int64), c, 0, False, epochs=model.best_epochs
    )
    for a, b in zip(model.parameters(), trained.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_check_on_later_purchases_needs_no_margin() -> None:
    c = cfg(warm_start_margin=0.2, warm_start_z=2.0)
    base = np.full(100, 0.005)
    better = base + 0.0002  # +4%, on every shopper
    assert not warm_start_wins(better.sum(), better, base.sum(), base, c)
    assert warm_start_wins(better.sum(), better, base.sum(), base, c, margin=0.0)


def test_enough_held_out_visits_keep_the_held_out_check() -> None:
    data, cats = planted()
    bands = np.zeros(N_ITEMS, np.int64)
    calls: list[int] = []

    def check(model: TwoTower) -> np.ndarray:
        calls.append(1)
        return np.zeros(4)

    # 12 shoppers held out of 120: at a minimum of 12 visits they are checked, not the later
    # purchases, and the fit is the one without a check.
    c = cfg(epochs=4, holdout_min_rows=12)
    with_check = train_two_tower(data, N_ITEMS, cats, bands, c, 0, False, check=check)
    without = train_two_tower(data, N_ITEMS, cats, bands, c, 0, False)
    assert not calls
    assert with_check.best_epochs == without.best_epochs
    for a, b in zip(with_check.parameters(), without.parameters(), strict=True):
        assert torch.equal(a, b)
    # One more needed, and the later purchases decide.
    train_two_tower(
        data,
        N_ITEMS,
        cats,
        bands,
        cfg(epochs=4, holdout_min_rows=13, patience=10),
        0,
        False,
        check=check,
    )
    assert len(calls) == 4
