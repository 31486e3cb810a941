"""Input shaping for the user tower (recsys.session_tower); the ONNX graph itself runs in
tests/integration/test_recommender_trained.py."""

from __future__ import annotations

import numpy as np

from recsys.session_tower import SessionTower


def test_history_is_cut_to_newest_and_padded() -> None:
    seen: list[np.ndarray] = []

    def embed(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.copy())
        # A position-weighted sum, so the output depends on order and padding.
        weights = np.arange(1, batch.shape[1] + 1, dtype=np.float32)
        return (batch.astype(np.float32) * weights).sum(axis=1, keepdims=True)

    tower = SessionTower(embed, history_length=4, pad_index=99)
    v = tower.vector(np.array([7, 3]))
    assert seen[-1].tolist() == [[7, 3, 99, 99]] and seen[-1].dtype == np.int64
    assert v.shape == (1,) and v.dtype == np.float32
    tower.vector(np.array([1, 2, 3, 4, 5, 6]))
    assert seen[-1].tolist() == [[1, 2, 3, 4]]
    tower.vector(np.array([], dtype=np.int64))
    assert seen[-1].tolist() == [[99, 99, 99, 99]]
