"""recsys.bundle: write/publish/load round trip, sha256 verification, the current pointer."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairshelf.errors import FailedPrecondition, ModelUnavailable, NotFound
from recsys import bundle as B
from recsys.confidence import ConfidenceParams
from recsys.hybrid import HybridParams
from recsys.index import VectorIndex
from recsys.user_candidates import rank_user_candidates


def _vectors(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(3, 4))


def _write(
    root: Path,
    bundle_id: str,
    seed: int = 0,
    candidates: np.ndarray | None = None,
    length: int | None = None,
) -> Path:
    items, users = _vectors(seed)
    w = B.BundleWriter(root, bundle_id)
    w.save_frame(B.ITEMS, pd.DataFrame({"item_id": [f"i{k}" for k in range(6)]}))
    w.save_frame(B.USERS, pd.DataFrame({"user_id": ["a", "b", "c"]}))
    w.save_frame(
        B.INTERACTIONS,
        pd.DataFrame(
            {
                "user_index": [0, 0, 2, 2],
                "item_index": [1, 4, 3, 5],
                "purchases": [2, 0, 1, 3],
                "repeat_score": [0.5, 0.0, 0.25, 1.0],
            }
        ),
    )
    w.save_frame(B.POPULARITY, pd.DataFrame({"scope": ["*"], "rank": [0], "item_index": [1]}))
    w.save_array(B.ALS_ITEM_FACTORS, items)
    w.save_array(B.ALS_USER_FACTORS, users.astype(np.float32))
    w.save_index(B.ALS_INDEX, VectorIndex.build(items))
    cands = None
    if candidates is not None:
        w.save_array(B.ALS_USER_CANDIDATES, candidates)
        cands = B.UserCandidatesInfo(
            file=B.ALS_USER_CANDIDATES,
            length=candidates.shape[1] if length is None else length,
        )
    now = datetime.now(UTC)
    manifest = B.Manifest(
        bundle_id=bundle_id,
        created_at=now,
        model="hybrid",
        seed=seed,
        data_fingerprint="f" * 64,
        data=B.DataSummary(
            events_path="e", items_path="i", n_events=4, n_users=3, n_items=6, reference_time=now
        ),
        config={"k": 1},
        library_versions={},
        confidence=ConfidenceParams(),
        hybrid=HybridParams(),
        als=B.AlsInfo(
            factors=4,
            iterations=1,
            index=B.IndexInfo(file=B.ALS_INDEX, kind="flat", dim=4, size=6, recall_at_20=1.0),
            user_candidates=cands,
        ),
        metrics={"all": {"hybrid": {"recall@20": 0.5}}},
    )
    return w.commit(manifest)


def test_round_trip_gives_typed_arrays_and_history(tmp_path: Path) -> None:
    path = _write(tmp_path, "b1")
    b = B.load_bundle(tmp_path, verify=True)
    assert b.path == path.resolve()
    assert b.als_item_factors.dtype == np.float32 and b.als_item_factors.shape == (6, 4)
    assert b.manifest.metrics["all"]["hybrid"]["recall@20"] == 0.5
    items, scores = b.purchased(2)
    assert items.tolist() == [5, 3]  # best buy-again first; never-bought rows excluded
    assert scores.tolist() == [1.0, 0.25]
    assert b.purchased(1)[0].size == 0
    assert b.repeat_vector(0)[1] == pytest.approx(0.5)
    assert set(b.manifest.files) >= {B.ITEMS, B.ALS_INDEX, B.ALS_USER_FACTORS}


def _ranked(length: int = 3) -> np.ndarray:
    items, users = _vectors()
    return rank_user_candidates(items, users, length)


def test_user_candidate_table_round_trips_memory_mapped(tmp_path: Path) -> None:
    table = _ranked()
    _write(tmp_path, "b1", candidates=table)
    b = B.load_bundle(tmp_path)
    assert b.als_user_candidates is not None
    # Mapped from the file, so the worker processes share one copy in the page cache.
    assert isinstance(b.als_user_candidates.base, np.memmap)
    np.testing.assert_array_equal(b.als_user_candidates, table)
    assert b.two_tower_user_candidates is None
    assert B.ALS_USER_CANDIDATES in b.manifest.files
    assert B.load_bundle(_write(tmp_path / "none", "b2")).als_user_candidates is None


@pytest.mark.parametrize(
    ("table", "length", "says"),
    [
        (np.array([[1, 9], [0, 1], [2, 3]], dtype=np.int32), None, r"outside 0\.\.5"),
        (np.array([[1, -1], [0, 1], [2, 3]], dtype=np.int32), None, r"outside 0\.\.5"),
        (np.array([[1, 2], [0, 1]], dtype=np.int32), None, "3 users"),
        (_ranked().astype(np.int64), None, "int64"),
        (_ranked(2), 3, "manifest says 3"),
        # Right shape, sizes and indices, but ranked for other users (another training run).
        (np.roll(_ranked(), 1, axis=0), None, "not these users' best items"),
    ],
)
def test_inconsistent_user_candidate_table_is_refused(
    tmp_path: Path, table: np.ndarray, length: int | None, says: str
) -> None:
    # Hashes match (the writer recorded them): the content itself cannot belong here.
    _write(tmp_path, "b1", candidates=table, length=length)
    with pytest.raises(ModelUnavailable, match=says):
        B.load_bundle(tmp_path)


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "b1")
    arr = np.load(path / B.ALS_USER_FACTORS)
    np.save(path / B.ALS_USER_FACTORS, arr + 1.0)
    with pytest.raises(ModelUnavailable, match="sha256"):
        B.load_bundle(path, verify=True)
    assert B.load_bundle(path, verify=False).als_user_factors[0, 0] == pytest.approx(arr[0, 0] + 1)


def test_a_file_read_without_a_recorded_hash_is_refused(tmp_path: Path) -> None:
    # An elasticity table dropped into a published bundle would be loaded, unverified.
    path = _write(tmp_path, "b1")
    pd.DataFrame({"item_id": ["i0"], "elasticity": [-9.0]}).to_parquet(path / B.ELASTICITY)
    with pytest.raises(ModelUnavailable, match=r"elasticity\.parquet is read but has no sha256"):
        B.load_bundle(path)
    (path / B.ELASTICITY).unlink()
    # A manifest edited to point at a file it does not hash.
    raw = json.loads((path / B.MANIFEST).read_text())
    raw["files"].pop(B.ALS_INDEX)
    (path / B.MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ModelUnavailable, match=r"als_index\.faiss is read but has no sha256"):
        B.load_bundle(path)


def test_missing_file_and_missing_manifest(tmp_path: Path) -> None:
    path = _write(tmp_path, "b1")
    (path / B.POPULARITY).unlink()
    with pytest.raises(ModelUnavailable, match="missing"):
        B.load_bundle(path)
    with pytest.raises(NotFound):
        B.load_bundle(tmp_path / "nowhere")


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "b1")
    raw = json.loads((path / B.MANIFEST).read_text())
    raw["schema_version"] = B.SCHEMA_VERSION + 1
    (path / B.MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ModelUnavailable, match="schema version"):
        B.read_manifest(path)


def test_current_moves_atomically_and_ids_are_unique(tmp_path: Path) -> None:
    _write(tmp_path, "b1")
    second = _write(tmp_path, "b2", seed=1)
    link = tmp_path / B.CURRENT_LINK
    assert link.is_symlink() and os.readlink(link) == "b2"
    assert B.resolve_bundle(tmp_path) == second.resolve()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    B.set_current(tmp_path, tmp_path / "b1")
    assert B.load_bundle(tmp_path).manifest.bundle_id == "b1"
    with pytest.raises(FailedPrecondition):
        B.BundleWriter(tmp_path, "b1")
