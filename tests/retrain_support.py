"""Helpers for the retraining tests: a tiny store split into a base history file and an event
log, a champion trained on the base, and the ``fairshelf`` command run as a real process.

The split is by time: the base history holds the events before ``SPLIT``, the event log
(a real SQLite file) the later ones, as a server would have logged them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from serving_support import TRAIN_CONFIG, tiny_store_dir

from serving.store.db import Database
from serving.store.events_store import EventsStore, make_event

SPLIT_DAYS_BEFORE_END = 5
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RetrainSetup:
    """Files of one retraining scenario."""

    root: Path
    base: Path
    items: Path
    db_url: str
    bundles: Path
    config: Path
    logged: pd.DataFrame


def raw_events(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Canonical events as the event API's JSON objects."""
    out = []
    for row in frame.to_dict("records"):
        raw: dict[str, object] = {
            "event_id": row["event_id"],
            "user_id": row["user_id"],
            "item_id": row["item_id"],
            "event_type": row["event_type"],
            "timestamp": row["timestamp"].isoformat(),
            "quantity": int(row["quantity"]),
            "unit_price": float(row["unit_price"]),
        }
        if isinstance(row.get("session_id"), str):
            raw["session_id"] = row["session_id"]
        out.append(raw)
    return out


def log_events(db_url: str, frame: pd.DataFrame) -> int:
    """Append canonical events to the event log; returns how many were written."""
    db = Database(db_url)
    try:
        store = EventsStore(db)
        return store.append(make_event(r, i) for i, r in enumerate(raw_events(frame))).accepted
    finally:
        db.close()


def setup(root: Path, corrupt_base: bool = False, train_champion: bool = True) -> RetrainSetup:
    """Base file, item file, event log and (unless told not to) a champion bundle.

    ``corrupt_base`` writes, after training the champion on the honest base, a base file whose
    item ids are shuffled among the rows (the broken feed the gate must catch).
    """
    from training.trainer import train

    store = tiny_store_dir()
    events = pd.read_parquet(store / "events.parquet")
    split = events["timestamp"].max() - pd.Timedelta(days=SPLIT_DAYS_BEFORE_END)
    base, logged = events[events["timestamp"] <= split], events[events["timestamp"] > split]
    root.mkdir(parents=True, exist_ok=True)
    base_path = root / "base.parquet"
    base.to_parquet(base_path, index=False)
    items = store / "items.parquet"
    config = root / "train-config.json"
    config.write_text(json.dumps(TRAIN_CONFIG))
    db_url = f"sqlite:///{root / 'events.db'}"
    log_events(db_url, logged)
    bundles = root / "bundles"
    if train_champion:
        train(base_path, items, bundles, config_path=config, seed=7, show_progress=False)
    if corrupt_base:
        shuffled = base.copy()
        rng = np.random.default_rng(0)
        shuffled["item_id"] = rng.permutation(shuffled["item_id"].to_numpy())
        shuffled.to_parquet(base_path, index=False)
    return RetrainSetup(root, base_path, items, db_url, bundles, config, logged)


def fairshelf(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the ``fairshelf`` command line in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "fairshelf.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )


def start_fairshelf(*args: str) -> subprocess.Popen[str]:
    """Start the ``fairshelf`` command line in a child process (the caller ends it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "fairshelf.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )


def retrain_args(s: RetrainSetup, *extra: str) -> list[str]:
    """``retrain`` arguments of a setup."""
    return [
        "retrain",
        "--db",
        s.db_url,
        "--bundles",
        str(s.bundles),
        "--base-events",
        str(s.base),
        "--items",
        str(s.items),
        *extra,
    ]


def bundles_cmd(s: RetrainSetup, action: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``fairshelf bundles ACTION ARGS --bundles ... --db ...`` of a setup."""
    return fairshelf("bundles", action, *args, "--bundles", str(s.bundles), "--db", s.db_url)


def run_report(bundles: Path) -> dict[str, object]:
    """The JSON report of the newest run."""
    runs = sorted((bundles / "runs").iterdir())
    return json.loads((runs[-1] / "report.json").read_text())  # type: ignore[no-any-return]
