"""Two-tower ALS start: fixed scaled item ids, the held-out choice, the final fit's repeat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.unit.test_train_two_tower import cfg, planted
from training.onnx_export import PARITY_TOLERANCE, export_user_tower
from training.two_tower_data import TwoTowerData
from training.two_tower_model import TwoTower
from training.two_tower_train import TwoTowerConfig, _fit, train_two_tower, warm_start_wins

torch.set_num_threads(1)
N_ITEMS = 200
GROUP = 50


def hard_planted() -> tuple[TwoTowerData, np.ndarray, np.ndarray]:
    """200 items in groups of 50 with no category: the ids alone say which group."""
    data, _ = planted(n_users=200, seed=1, n_items=N_ITEMS, group=GROUP)
    zeros = np.zeros(N_ITEMS, np.int64)
    return data, zeros, zeros


def group_factors(dim: int = 6) -> np.ndarray:
    """ALS-like item factors that know the groups (one-hot group, plus a little noise)."""
    rng = np.random.default_rng(3)
    f = rng.normal(0, 0.01, (N_ITEMS, dim)).astype(np.float32)
    f[np.arange(N_ITEMS), np.arange(N_ITEMS) // GROUP] += 1.0
    return f


def hard_cfg(**kw: object) -> TwoTowerConfig:
    # 20 held-out shoppers: the margin is what these tests check, the noise rule its own test.
    return cfg(epochs=3, **{"warm_start_z": 0.0, **kw})


def test_als_start_fixes_the_ids_at_the_scaled_factors(tmp_path: Path) -> None:
    data, cats, bands = hard_planted()
    factors = group_factors()
    c = hard_cfg(als_warm_start=3.0)
    model = train_two_tower(
        data, N_ITEMS, cats, bands, c, 0, False, epochs=2, als_items=factors, warm_start=True
    )
    assert model.warm_started
    ids = model.item.features.ids.weight.detach().numpy()
    assert not model.item.features.ids.weight.requires_grad
    # The first 6 of 8 dimensions are the factors times one scale, unchanged by training.
    ratio = ids[:N_ITEMS, :6] / factors
    assert np.allclose(ratio, ratio[0, 0], rtol=1e-4)
    torch.manual_seed(0)
    fresh = TwoTower(N_ITEMS, cats, bands, 8, 6).item.features.ids.weight.detach().numpy()
    random_norm = np.linalg.norm(fresh[:N_ITEMS, :6], axis=1).mean()
    assert np.linalg.norm(ids[:N_ITEMS, :6], axis=1).mean() == pytest.approx(3 * random_norm, 1e-5)
    assert (ids[N_ITEMS] == 0).all()  # padding
    # The dimensions past the factors keep the random start of the same seed.
    assert np.array_equal(ids[:N_ITEMS, 6:], fresh[:N_ITEMS, 6:])
    path = tmp_path / "user.onnx"
    assert export_user_tower(model, path, 6, data.final_histories) <= PARITY_TOLERANCE


def test_checked_fit_keeps_the_start_with_the_better_holdout_recall() -> None:
    data, cats, bands = hard_planted()
    factors = group_factors()
    c = hard_cfg(warm_start_margin=0.1)
    random_model, random_score, _, _ = _fit(data, N_ITEMS, cats, bands, c, 0, False, None, None)
    warm_model, warm_score, _, _ = _fit(data, N_ITEMS, cats, bands, c, 0, False, None, factors)
    # Factors that know the groups beat ids that have to learn them in three epochs.
    assert warm_score > random_score * 1.1
    kept = train_two_tower(data, N_ITEMS, cats, bands, c, 0, False, als_items=factors)
    assert kept.warm_started and kept.best_epochs == warm_model.best_epochs
    for a, b in zip(kept.parameters(), warm_model.parameters(), strict=True):
        assert torch.equal(a, b)
    # Factors that mix the groups lose to the random start, which is then kept.
    mixed = np.roll(group_factors(), 1, axis=1)[np.random.default_rng(0).permutation(N_ITEMS)]
    mixed_score = _fit(data, N_ITEMS, cats, bands, c, 0, False, None, mixed).score
    kept = train_two_tower(data, N_ITEMS, cats, bands, c, 0, False, als_items=mixed)
    assert kept.warm_started == (mixed_score > random_score * 1.1)
    if not kept.warm_started:
        for a, b in zip(kept.parameters(), random_model.parameters(), strict=True):
            assert torch.equal(a, b)


def test_a_gain_below_the_margin_keeps_the_random_start() -> None:
    data, cats, bands = hard_planted()
    factors = group_factors()
    c = hard_cfg()
    random_score = _fit(data, N_ITEMS, cats, bands, c, 0, False, None, None).score
    warm_score = _fit(data, N_ITEMS, cats, bands, c, 0, False, None, factors).score
    gain = warm_score / random_score - 1.0
    for margin, warm in ((gain - 0.01, True), (gain + 0.01, False)):
        strict = hard_cfg(warm_start_margin=margin)
        model = train_two_tower(data, N_ITEMS, cats, bands, strict, 0, False, als_items=factors)
        assert model.warm_started == warm


def test_final_fit_repeats_the_choice_and_zero_turns_the_start_off() -> None:
    data, cats, bands = hard_planted()
    factors = group_factors()
    c = hard_cfg()
    for warm in (True, False):
        model = train_two_tower(
            data, N_ITEMS, cats, bands, c, 0, False, epochs=2, als_items=factors, warm_start=warm
        )
        assert model.warm_started == warm and model.best_epochs == 2
        assert model.item.features.ids.weight.requires_grad != warm
    # Nobody held out: no check, so the random start.
    unchecked = hard_cfg(holdout_fraction=0.0)
    assert not train_two_tower(
        data, N_ITEMS, cats, bands, unchecked, 0, False, als_items=factors
    ).warm_started
    off = hard_cfg(als_warm_start=0.0)
    assert not train_two_tower(
        data, N_ITEMS, cats, bands, off, 0, False, epochs=2, als_items=factors, warm_start=True
    ).warm_started
    assert not train_two_tower(
        data, N_ITEMS, cats, bands, off, 0, False, als_items=factors
    ).warm_started


def test_a_gain_within_the_noise_of_the_held_out_rows_keeps_the_random_start() -> None:
    data, cats, bands = hard_planted()
    factors = group_factors()
    _, random_score, random_shares, _ = _fit(
        data, N_ITEMS, cats, bands, hard_cfg(), 0, False, None, None
    )
    _, warm_score, warm_shares, _ = _fit(
        data, N_ITEMS, cats, bands, hard_cfg(), 0, False, None, factors
    )
    diff = warm_shares - random_shares
    # Each row's share sums to the score, so the paired gain is the difference of the scores.
    assert diff.sum() == pytest.approx(warm_score - random_score)
    z = diff.sum() / (np.sqrt(diff.size) * diff.std(ddof=1))
    assert warm_score > random_score * 1.1 and 0.5 < z < 3.0
    for needed, warm in ((z - 0.1, True), (z + 0.1, False)):
        c = hard_cfg(warm_start_margin=0.1, warm_start_z=needed)
        model = train_two_tower(data, N_ITEMS, cats, bands, c, 0, False, als_items=factors)
        assert model.warm_started == warm


def test_the_noise_rule_weighs_consistent_gains_against_scattered_ones() -> None:
    c = cfg(warm_start_margin=0.1, warm_start_z=2.0)
    base = np.full(100, 0.005)  # score 0.5 over 100 rows
    steady = base + 0.001  # +20%, every row a little better
    scattered = base.copy()
    scattered[:2] += 0.05  # the same +20%, from two rows
    assert warm_start_wins(steady.sum(), steady, base.sum(), base, c)
    assert not warm_start_wins(scattered.sum(), scattered, base.sum(), base, c)
    assert warm_start_wins(scattered.sum(), scattered, base.sum(), base, cfg(warm_start_z=0.0))
    # Below the margin, or nobody held out (-1): no.
    small = base + 0.0002
    assert not warm_start_wins(small.sum(), small, base.sum(), base, c)
    assert not warm_start_wins(-1.0, np.zeros(0), 0.5, np.zeros(0), c)
