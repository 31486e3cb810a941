"""End-to-end trainer on the tiny synthetic store: bundle contents, planted tastes, evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fairshelf.cli.main import app
from recsys.bundle import CURRENT_LINK, load_bundle
from recsys.two_tower_runtime import UserTower
from training.data.synthetic import SyntheticStore
from training.trainer import train

torch.set_num_threads(1)
pytestmark = pytest.mark.slow

CUT = "2026-02-01"
TINY_CONFIG = {
    "als": {"factors_grid": [16, 32], "iterations": 10, "threads": 1},
    "two_tower": {"dim": 16, "epochs": 20, "batch_size": 128},
    "hybrid": {
        "repeat_weights": [0.0, 0.3, 0.6],
        "repeat_half_lives_days": [30.0],
        "two_tower_weights": [0.0, 0.3],
        "trend_weights": [0.0, 0.2],
    },
    "evaluation": {"validation_days": 10},
    "show_progress": False,
}


def taste_rate(store: SyntheticStore, user_ids: np.ndarray, scores: np.ndarray) -> float:
    """Share of each shopper's top-10 items that fall in their two planted categories."""
    truth = store.truth_users.set_index("user_id")
    cats = store.items["category"].astype(str).to_numpy()
    rates = []
    for row, uid in enumerate(user_ids):
        liked = {truth.loc[uid, "favourite_category"], truth.loc[uid, "second_category"]}
        top = np.argsort(-scores[row], kind="stable")[:10]
        rates.append(np.mean([cats[i] in liked for i in top]))
    return float(np.mean(rates))


def chance_rate(store: SyntheticStore, user_ids: np.ndarray) -> float:
    truth = store.truth_users.set_index("user_id")
    cats = store.items["category"].astype(str).to_numpy()
    return float(
        np.mean(
            [
                np.isin(cats, truth.loc[u, ["favourite_category", "second_category"]]).mean()
                for u in user_ids
            ]
        )
    )


@pytest.fixture(scope="module")
def trained(tiny_store: SyntheticStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    cfg = root / "config.json"
    cfg.write_text(json.dumps(TINY_CONFIG))
    out = root / "bundles"
    path = train(
        tiny_store.paths.events, tiny_store.paths.items, out, eval_cut=CUT, config_path=cfg, seed=3
    )
    assert path.parent == out
    return out


def test_bundle_is_complete_and_verified(trained: Path) -> None:
    b = load_bundle(trained, verify=True)
    assert (trained / CURRENT_LINK).is_symlink()
    m = b.manifest
    for mode in ("all", "novel"):
        models = set(m.metrics[mode])
        assert {"hybrid", "als", "two_tower"} <= models
        assert {
            "baseline/popularity",
            "baseline/item_knn",
            "baseline/top_frequency",
            "baseline/als_default",
        } <= models
        for k in (10, 20, 50):
            for name in ("recall", "ndcg", "hit_rate", "map", "coverage"):
                assert 0.0 <= m.metrics[mode]["hybrid"][f"{name}@{k}"] <= 1.0
    assert m.als.index.recall_at_20 >= 0.99
    assert m.two_tower is not None and m.two_tower.parity_max_abs_diff <= 1e-4
    assert m.data.dropped_rows.get("event_type_impression", 0) > 0
    assert m.confidence.bm25_avg_length > 0 and "implicit" in m.library_versions
    report = (b.path / "report.md").read_text()
    assert report.count("recall@20") >= 1
    # The chosen blend's own validation score, the number the search maximised, is kept.
    assert m.evaluation is not None and set(m.evaluation.validation_recall) == {"all", "novel"}
    assert all(0.0 < v <= 1.0 for v in m.evaluation.validation_recall.values())
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(m.evaluation.validation_recall.items()))
    assert f"on the validation sample: {shown}." in report
    assert list((b.path / "plots").glob("*.png"))
    assert b.elasticity is not None and {"item_id", "elasticity"} <= set(b.elasticity.columns)
    assert set(b.manifest.files) == {
        str(p.relative_to(b.path)) for p in b.path.rglob("*") if p.is_file()
    } - {"manifest.json"}
    # hybrid beats recommending what is popular
    all_m = m.metrics["all"]
    assert all_m["hybrid"]["recall@20"] > all_m["baseline/popularity"]["recall@20"]


def test_models_find_the_planted_tastes(trained: Path, tiny_store: SyntheticStore) -> None:
    b = load_bundle(trained)
    chance = chance_rate(tiny_store, b.user_ids)
    als = taste_rate(tiny_store, b.user_ids, b.als_user_factors @ b.als_item_factors.T)
    assert b.two_tower_user_vectors is not None and b.two_tower_item_vectors is not None
    tt = taste_rate(tiny_store, b.user_ids, b.two_tower_user_vectors @ b.two_tower_item_vectors.T)
    assert als >= 3 * chance, (als, chance)
    assert tt >= 2 * chance, (tt, chance)
    # shoppers embedded from their items alone (as a shopper unknown to training would be)
    # through the exported ONNX user tower still get their planted tastes
    info = b.manifest.two_tower
    assert info is not None
    tower = UserTower(b.path / info.user_tower, info.history_length, info.pad_index)
    inter = b.interactions.sort_values(["user_index", "weight"], ascending=[True, False])
    histories = inter.groupby("user_index")["item_index"].apply(list)
    vecs = tower.embed([histories.get(u, []) for u in range(len(b.user_ids))])
    cold = taste_rate(tiny_store, b.user_ids, vecs @ b.two_tower_item_vectors.T)
    assert cold >= 2 * chance, (cold, chance)


def test_evaluate_command_reproduces_the_manifest(trained: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", str(trained)])
    assert result.exit_code == 0, result.output
    from training.reevaluate import evaluate_bundle

    again = evaluate_bundle(trained)
    m = load_bundle(trained).manifest.metrics
    for mode in ("all", "novel"):
        for name in ("hybrid", "als", "two_tower"):
            assert again[mode][name]["recall@20"] == pytest.approx(m[mode][name]["recall@20"])


def test_same_seed_same_model(trained: Path, tiny_store: SyntheticStore, tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(TINY_CONFIG))
    path = train(
        tiny_store.paths.events,
        tiny_store.paths.items,
        tmp_path / "b",
        eval_cut=CUT,
        config_path=cfg,
        seed=3,
    )
    first, second = load_bundle(trained), load_bundle(path)
    assert np.array_equal(first.als_item_factors, second.als_item_factors)
    assert first.manifest.metrics == second.manifest.metrics


def test_cli_reports_a_bad_cut_in_one_line(tiny_store: SyntheticStore, tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "fairshelf.cli.main",
        "train",
        "--events",
        str(tiny_store.paths.events),
        "--items",
        str(tiny_store.paths.items),
        "--out",
        str(tmp_path),
        "--eval-cut",
        "not-a-date",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "eval_cut" in proc.stderr or "not-a-date" in proc.stderr
    assert "Traceback" not in proc.stderr
