"""training.retrain.registry and training.retrain.locks on real bundle directories (copies of
one tiny trained bundle under new ids)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from serving_support import tiny_bundles

from fairshelf.errors import FailedPrecondition
from recsys.bundle import set_current
from training.retrain import registry
from training.retrain.locks import LockBusy, bundles_lock


def _bundles(tmp_path: Path, n: int) -> tuple[Path, list[str]]:
    """``n`` bundles created a day apart, the newest current (no history)."""
    src = tiny_bundles(tmp_path / "src")
    one = src / "current"
    root = tmp_path / "bundles"
    root.mkdir()
    ids = []
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        bid = f"b{i}"
        shutil.copytree(one.resolve(), root / bid)
        m = json.loads((root / bid / "manifest.json").read_text())
        m["bundle_id"] = bid
        m["created_at"] = (t0 + timedelta(days=i)).isoformat()
        (root / bid / "manifest.json").write_text(json.dumps(m))
        ids.append(bid)
    set_current(root, root / ids[-1])
    return root, ids


def test_previous_falls_back_to_creation_order_then_follows_history(tmp_path: Path) -> None:
    root, ids = _bundles(tmp_path, 4)
    assert registry.current_id(root) == "b3"
    assert registry.previous_id(root) == "b2"
    registry.move_current(root, "b0", "promote", "ops", "test")
    assert registry.previous_id(root) == "b3"  # the history says who served before
    assert registry.rollback_target(root) == "b3"
    # Work directories and broken manifests are not bundles.
    (root / ".retrain-x").mkdir()
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_text("{")
    assert [e.bundle_id for e in registry.list_bundles(root)] == ids


def test_prune_never_removes_current_or_previous(tmp_path: Path) -> None:
    root, _ = _bundles(tmp_path, 5)
    registry.move_current(root, "b1", "promote", "ops", "old one back")
    removed = registry.prune(root, keep=1)
    # Newest kept (b4), current (b1) and the one before it (b4 again) protected.
    assert sorted(removed) == ["b0", "b2", "b3"]
    assert sorted(e.bundle_id for e in registry.list_bundles(root)) == ["b1", "b4"]
    assert not list(root.glob(".deleting-*"))


def test_rollback_without_an_earlier_bundle_says_so(tmp_path: Path) -> None:
    root, _ = _bundles(tmp_path, 1)
    with pytest.raises(FailedPrecondition, match="no earlier bundle"):
        registry.rollback_target(root)


def test_the_lock_is_exclusive_and_waits(tmp_path: Path) -> None:
    busy = pytest.raises(LockBusy, match="another job")
    with bundles_lock(tmp_path, 0), busy, bundles_lock(tmp_path, 0.3):
        pass
    with bundles_lock(tmp_path, 0):
        pass
