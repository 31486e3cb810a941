"""training.retrain.gate_stats against direct computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.retrain.gate_stats import paired_bootstrap, per_user_metrics


def _ndcg(ranked: list[int], truth: set[int], k: int) -> float:
    dcg = sum(1 / math.log2(r + 2) for r, item in enumerate(ranked[:k]) if item in truth)
    ideal = sum(1 / math.log2(r + 2) for r in range(min(len(truth), k)))
    return dcg / ideal


def test_per_user_metrics_match_the_textbook_formulas() -> None:
    rng = np.random.default_rng(3)
    lists = np.stack([rng.permutation(50)[:20] for _ in range(40)])
    truth = [rng.choice(50, size=rng.integers(1, 30), replace=False) for _ in range(40)]
    recall, ndcg = per_user_metrics(lists, truth, 20)
    for u in range(40):
        hits = len(set(lists[u].tolist()) & set(truth[u].tolist()))
        assert recall[u] == pytest.approx(hits / min(len(truth[u]), 20))
        assert ndcg[u] == pytest.approx(_ndcg(lists[u].tolist(), set(truth[u].tolist()), 20))


def test_identical_models_give_a_zero_interval() -> None:
    a = np.random.default_rng(0).random(50)
    d = paired_bootstrap(a, a.copy(), 500, seed=1)
    assert d.difference == d.low == d.high == 0.0


def test_interval_is_seeded_and_covers_a_known_shift() -> None:
    rng = np.random.default_rng(0)
    champion = rng.random(400)
    challenger = champion - 0.1 + rng.normal(0, 0.05, 400)
    first = paired_bootstrap(champion, challenger, 1000, seed=5)
    assert first == paired_bootstrap(champion, challenger, 1000, seed=5)
    assert first.difference == pytest.approx(float((challenger - champion).mean()))
    assert first.low < -0.1 < first.high
    assert first.high < 0
    # Pairing removes what both share: the unpaired spread of the means is far wider.
    se_paired = float((challenger - champion).std() / math.sqrt(400))
    assert first.high - first.low == pytest.approx(2 * 1.96 * se_paired, rel=0.25)


def test_unaligned_input_is_refused() -> None:
    with pytest.raises(ValueError):
        paired_bootstrap(np.zeros(3), np.zeros(4))
