"""The two-tower trainer under torchrun (2 processes, gloo) matches a single process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from training.data.synthetic import SyntheticStore
from training.two_tower_main import main

torch.set_num_threads(1)
pytestmark = pytest.mark.slow

CONFIG = {"two_tower": {"dim": 16, "epochs": 20, "batch_size": 128}}


def _taste(store: SyntheticStore, npz: Path) -> float:
    z = np.load(npz)
    truth = store.truth_users.set_index("user_id")
    cats = store.items["category"].astype(str).to_numpy()
    scores = z["user_vectors"] @ z["item_vectors"].T
    rates = [
        np.isin(
            cats[np.argsort(-scores[row])[:10]],
            truth.loc[uid, ["favourite_category", "second_category"]],
        ).mean()
        for row, uid in enumerate(z["user_ids"])
    ]
    return float(np.mean(rates))


def test_torchrun_two_processes_same_quality(tiny_store: SyntheticStore, tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun is not None
    cfg = tmp_path / "tt.json"
    cfg.write_text(json.dumps(CONFIG))
    common = [
        "--events",
        str(tiny_store.paths.events),
        "--items",
        str(tiny_store.paths.items),
        "--config",
        str(cfg),
    ]
    single = tmp_path / "single.npz"
    main([*common, "--out", str(single)])
    multi = tmp_path / "multi.npz"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run(
        [
            torchrun,
            "--nproc_per_node=2",
            "--standalone",
            "-m",
            "training.two_tower_main",
            *common,
            "--out",
            str(multi),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(np.load(multi)["world_size"]) == 2
    one, two = _taste(tiny_store, single), _taste(tiny_store, multi)
    assert one >= 0.4 and two >= 0.4, (one, two)
    assert abs(one - two) <= 0.1, (one, two)
