"""training.bundle_export.build_index: the manifest states the beam chosen and held-out recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fairshelf.errors import InvalidArgument
from recsys import bundle as B
from recsys.index import VectorIndex
from recsys.index_tuning import recall_against_exact, split_queries
from training.bundle_export import build_index, recall_note
from training.config import TrainConfig, load_config


def gaussian(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def test_manifest_entry_has_the_chosen_beam_and_held_out_recall(tmp_path: Path) -> None:
    items, users = gaussian(3000, 16, 0), gaussian(1200, 16, 1)
    cfg = TrainConfig.model_validate({"index": {"exact_below": 1000, "recall_target": 0.95}})
    index, info = build_index(items, users, cfg, B.ALS_INDEX, seed=5)
    assert info.kind == "hnsw" and info.hnsw_m == 32 and info.ef_construction == 400
    # An easy target: a beam below the ceiling, and the one the index searches with.
    assert info.ef_search == index.ef_search and info.ef_search < cfg.index.ef_search
    _, held_out = split_queries(users, 5)
    assert info.recall_at_20 == recall_against_exact(index, items, held_out, 20) >= 0.95
    assert recall_note("ALS", info, cfg) == []
    index.save(tmp_path / B.ALS_INDEX)
    assert VectorIndex.load(tmp_path / B.ALS_INDEX).ef_search == info.ef_search


def test_flat_index_entry_is_unchanged() -> None:
    items, users = gaussian(400, 8, 2), gaussian(100, 8, 3)
    index, info = build_index(items, users, TrainConfig(), B.ALS_INDEX, seed=0)
    assert index.kind == info.kind == "flat"
    assert info.hnsw_m is info.ef_construction is info.ef_search is None
    assert info.recall_at_20 == 1.0


def test_recall_below_target_is_noted() -> None:
    info = B.IndexInfo(
        file=B.ALS_INDEX, kind="hnsw", dim=8, size=10, ef_search=256, recall_at_20=0.97
    )
    (note,) = recall_note("ALS", info, TrainConfig())
    assert "0.9700" in note and "0.99" in note and "256" in note


def test_index_section_is_validated(tmp_path: Path) -> None:
    cfg = TrainConfig()
    settings = cfg.index_settings()
    assert (settings.ef_search, settings.recall_target, settings.recall_margin) == (
        256,
        0.99,
        0.003,
    )
    toml = tmp_path / "c.toml"
    toml.write_text("[index]\nhnsw_m = 16\nrecall_target = 0.98\n")
    loaded = load_config(toml).index_settings()
    assert (loaded.hnsw_m, loaded.recall_target, loaded.ef_search) == (16, 0.98, 256)
    for bad, where in (
        ({"recall_target": 1.5}, r"index\.recall_target"),
        ({"ef_search": 0}, r"index\.ef_search"),
        ({"efsearch": 64}, r"index\.efsearch"),
    ):
        with pytest.raises(InvalidArgument, match=where):
            load_config(None, {"index": bad})
