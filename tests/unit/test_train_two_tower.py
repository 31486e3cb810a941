"""Two-tower: example building, log-Q loss, ONNX export parity, the onnxruntime wrapper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fairshelf.errors import InvalidArgument
from recsys.two_tower_runtime import UserTower
from training.onnx_export import PARITY_TOLERANCE, export_user_tower
from training.two_tower_model import TwoTower, in_batch_logq_loss
from training.two_tower_train import TwoTowerConfig, build_examples, train_two_tower

torch.set_num_threads(1)


def test_examples_use_only_earlier_sessions() -> None:
    # user 0: session 10 buys items 1,2; session 11 buys 3 and re-buys 1; user 1 one session
    user = np.array([0, 0, 0, 0, 1])
    item = np.array([1, 2, 3, 1, 4])
    ts = np.array([1, 2, 5, 6, 1])
    sess = np.array([10, 10, 11, 11, 12])
    data = build_examples(user, item, ts, sess, np.ones(5, bool), 2, 5, 3)
    assert data.example_item.tolist() == [1, 3]
    assert data.histories[data.example_session[0]].tolist() == [2, 1, 5]
    novel = build_examples(user, item, ts, sess, np.ones(5, bool), 2, 5, 3, True)
    assert novel.example_item.tolist() == [3]
    assert data.final_histories[0].tolist() == [1, 3, 2]
    assert data.final_histories[1].tolist() == [4, 5, 5]


def test_logq_correction_penalises_popular_items() -> None:
    u = torch.nn.functional.normalize(torch.ones(2, 4), dim=-1)
    v = u.clone()
    targets = torch.tensor([0, 1])
    flat = in_batch_logq_loss(u, v, targets, torch.log(torch.tensor([0.5, 0.5])), 1.0)
    assert flat == pytest.approx(np.log(2.0), abs=1e-5)
    # target 0 is frequent: its logit is lowered for row 0, raised relatively for row 1
    skew = in_batch_logq_loss(u, v, targets, torch.log(torch.tensor([0.9, 0.1])), 1.0)
    assert float(skew) != pytest.approx(float(flat))


def test_training_learns_co_purchase_and_exports_with_parity(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n_items = 20
    # two planted groups: a shopper buys items of one group only
    rows = []
    for u in range(60):
        group = u % 2
        for s in range(4):
            for it in rng.choice(np.arange(group * 10, group * 10 + 10), 2, replace=False):
                rows.append((u, int(it), s, u * 100 + s))
    user, item, ts, sess = (np.array(c) for c in zip(*rows, strict=True))
    data = build_examples(user, item, ts, sess, np.ones(len(user), bool), 60, n_items, 5)
    cfg = TwoTowerConfig(dim=8, history_length=5, epochs=30, batch_size=32, threads=1)
    cats, bands = np.arange(n_items) // 10, np.zeros(n_items, dtype=np.int64)
    model = train_two_tower(data, n_items, cats, bands, cfg, seed=0, show_progress=False)
    path = tmp_path / "user.onnx"
    diff = export_user_tower(model, path, 5, data.final_histories)
    assert diff <= PARITY_TOLERANCE
    tower = UserTower(path, 5, n_items)
    vecs = tower.embed([[1, 2, 3], [15, 12], []])
    with torch.no_grad():
        items = model.item(torch.arange(n_items)).numpy()
    top0, top1 = np.argsort(-(items @ vecs[0]))[:5], np.argsort(-(items @ vecs[1]))[:5]
    assert (top0 < 10).mean() >= 0.8 and (top1 >= 10).mean() >= 0.8
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    with pytest.raises(InvalidArgument):
        tower.embed([[n_items]])
    assert isinstance(TwoTower(3, np.zeros(3), np.zeros(3), 4), TwoTower)
