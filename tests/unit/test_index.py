"""recsys.index: exact below the threshold, HNSW above, recall measured against exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pricing.errors import InvalidArgument
from recsys.index import IndexSettings, VectorIndex, recall_against_exact


def test_flat_index_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vec = rng.normal(size=(300, 8)).astype(np.float32)
    q = rng.normal(size=(5, 8)).astype(np.float32)
    index = VectorIndex.build(vec)
    assert index.kind == "flat"
    ids, scores = index.search(q, 10)
    expected = np.argsort(-(q @ vec.T), axis=1)[:, :10]
    assert np.array_equal(ids, expected)
    assert np.allclose(scores, np.take_along_axis(q @ vec.T, expected, axis=1), atol=1e-5)
    index.save(tmp_path / "x.faiss")
    again = VectorIndex.load(tmp_path / "x.faiss")
    assert again.kind == "flat" and np.array_equal(again.search(q, 10)[0], ids)


def test_hnsw_above_threshold_keeps_recall(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vec = rng.normal(size=(3000, 16)).astype(np.float32)
    q = rng.normal(size=(200, 16)).astype(np.float32)
    index = VectorIndex.build(vec, IndexSettings(exact_below=1000))
    assert index.kind == "hnsw"
    assert recall_against_exact(index, vec, q, 20) >= 0.99
    index.save(tmp_path / "h.faiss")
    assert VectorIndex.load(tmp_path / "h.faiss").kind == "hnsw"


def test_bad_inputs_are_refused() -> None:
    index = VectorIndex.build(np.eye(4, dtype=np.float32))
    with pytest.raises(InvalidArgument):
        index.search(np.ones(4, dtype=np.float32), 0)
    with pytest.raises(InvalidArgument):
        index.search(np.ones(3, dtype=np.float32), 2)
    with pytest.raises(InvalidArgument):
        VectorIndex.build(np.array([[np.nan, 1.0]], dtype=np.float32))
    ids, _ = index.search(np.array([0, 0, 1, 0], dtype=np.float32), 50)
    assert ids.shape == (1, 4) and ids[0, 0] == 2
