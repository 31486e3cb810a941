"""Two-tower losses: the multinomial terms against a direct computation, sampled softmax."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.two_tower_loss import Batch, multinomial_loss, sampled_softmax_loss
from training.two_tower_model import TwoTower


def test_all_and_novel_terms_match_a_direct_computation() -> None:
    logits = torch.tensor([[2.0, 0.0, 1.0, -1.0], [0.5, 0.5, 0.0, 3.0]])
    # row 0 has items 0 and 3 in its history (column 4 = padding); row 1 has item 3
    history = torch.tensor([[0, 3, 4], [3, 4, 4]])
    pos = torch.tensor([0, 0, 1])
    cols = torch.tensor([0, 2, 1])
    novel = torch.tensor([False, True, True])
    logp = torch.log_softmax(logits, dim=-1)
    expect_all = -((logp[0, 0] + logp[0, 2]) / 2 + logp[1, 1]) / 2
    got_all = multinomial_loss(logits, history, pos, cols, novel, 0.0)
    assert float(got_all) == pytest.approx(float(expect_all), abs=1e-6)
    # Novel term: the history items leave the softmax.
    lp0 = torch.log_softmax(logits[0, [1, 2]], dim=-1)[1]
    lp1 = torch.log_softmax(logits[1, [0, 1, 2]], dim=-1)[1]
    expect_novel = -(lp0 + lp1) / 2
    got_novel = multinomial_loss(logits, history, pos, cols, novel, 1.0)
    assert float(got_novel) == pytest.approx(float(expect_novel), abs=1e-5)
    mixed = multinomial_loss(logits, history, pos, cols, novel, 0.25)
    assert float(mixed) == pytest.approx(0.75 * float(expect_all) + 0.25 * float(expect_novel))


def test_sampled_softmax_runs_backward_and_log_q_changes_it() -> None:
    torch.manual_seed(0)
    n = 50
    model = TwoTower(n, np.zeros(n, np.int64), np.zeros(n, np.int64), 8, 4)
    batch = Batch(
        torch.tensor([[1, 2, n, n], [7, n, n, n]]),
        torch.tensor([0, 0, 1]),
        torch.tensor([3, 4, 9]),
        torch.tensor([True, True, True]),
    )
    prob = np.full(n, 1.0 / n)
    prob[3] = 0.5  # a best seller
    args = (model, batch, n, 0.1, 0.5, 10, prob)
    with_q = sampled_softmax_loss(*args, np.random.default_rng(0), True)
    without = sampled_softmax_loss(*args, np.random.default_rng(0), False)
    q, no_q = float(with_q.detach()), float(without.detach())
    assert np.isfinite(q) and q != pytest.approx(no_q)
    with_q.backward()
    assert model.item.features.ids.weight.grad is not None
    assert float(model.item.features.ids.weight.grad[3].abs().sum()) > 0
