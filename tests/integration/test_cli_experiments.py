"""fairshelf.cli.experiments_cmd: ``plan``, ``report`` and ``switchback`` on real SQLite files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from fairshelf.cli.main import app
from fairshelf.errors import InvalidArgument
from serving.store.db import Database
from serving.store.events_store import Event, EventsStore
from serving.store.exposures_store import Exposure, ExposuresStore, to_us
from training.data.synthetic import SyntheticStore, generate_store, load_store
from training.data.synthetic_experiment import PlantedExperiment, exposures_from_sessions
from training.data.synthetic_sessions import SessionModel

runner = CliRunner()
PLANT = PlantedExperiment(
    name="ranker", split={"control": 0.5, "treatment": 0.5}, conversion_lift={"treatment": 1.5},
    start_day=20,
)  # fmt: skip


def _load(db_url: str, events: pd.DataFrame, exposures: pd.DataFrame | None = None) -> None:
    db = Database(db_url)
    store = EventsStore(db)
    batch = [
        Event(
            r.event_id,
            r.user_id,
            r.item_id,
            r.event_type,
            r.timestamp.to_pydatetime(),
            int(r.quantity),
            float(r.unit_price),
        )
        for r in events.itertuples()
    ]
    for k in range(0, len(batch), 5000):
        store.append(batch[k : k + 5000])
    if exposures is not None:
        ExposuresStore(db).append(
            [
                Exposure(
                    to_us(e.ts.to_pydatetime()),
                    e.request_id,
                    e.experiment,
                    e.user_id,
                    e.variant,
                    e.model_version,
                    e.surface,
                    e.strategy,
                    0,
                    tuple(e.items),
                )
                for e in exposures.itertuples()
            ]
        )
    db.close()


def test_plan_reads_the_history_and_prints_both_sample_sizes(
    tiny_store: SyntheticStore, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'h.db'}"
    _load(db, tiny_store.events)
    r = runner.invoke(app, ["experiments", "plan", "--db", db, "--metric", "revenue_per_shopper",
                            "--mde", "0.1"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "without CUPED:" in r.output and "with CUPED:" in r.output
    assert "shoppers per variant" in r.output


def test_report_of_a_planted_store_and_its_errors(tmp_path: Path) -> None:
    generate_store(tmp_path / "s", users=500, items=60, days=30, seed=2,
                   model=SessionModel(planted=PLANT))  # fmt: skip
    events = load_store(tmp_path / "s").events
    exposures = exposures_from_sessions(events, PLANT)
    db = f"sqlite:///{tmp_path / 'r.db'}"
    _load(db, events, exposures)
    out = tmp_path / "out"
    r = runner.invoke(app, ["experiments", "report", "--db", db, "--experiment", "ranker",
                            "--format", "html", "--out", str(out), "--split",
                            "control=0.5,treatment=0.5"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (out / "report.html").read_text().count("<table>") == 2
    assert (out / "effects.png").is_file() and (out / "path.png").is_file()
    assert "conversion rate | treatment" in r.output

    late = (events["timestamp"].max() + timedelta(days=5)).isoformat()
    for message, args in {
        "has no exposures between": ["--experiment", "ranker", "--since", late],
        "--format must be md, json or html": ["--experiment", "ranker", "--format", "pdf"],
    }.items():
        r = runner.invoke(app, ["experiments", "report", "--db", db, "--out", str(out), *args])
        assert isinstance(r.exception, InvalidArgument) and message in str(r.exception)
    # The console script itself: one line, exit code 2, no traceback.
    env = {**os.environ, "COLUMNS": "200"}
    for message, args in {
        "no exposures of an experiment named 'other'": ["--experiment", "other"],
        "--since is not an ISO date": ["--experiment", "ranker", "--since", "yesterday"],
    }.items():
        p = subprocess.run(
            [sys.executable, "-m", "fairshelf.cli.main", "experiments", "report", "--db", db,
             "--out", str(out), *args],
            capture_output=True, text=True, timeout=120, check=False, env=env,
        )  # fmt: skip
        assert p.returncode == 2 and message in p.stderr, (message, p.stderr)
        assert "Traceback" not in p.stderr


def test_switchback_writes_a_slot_readout(tiny_store: SyntheticStore, tmp_path: Path) -> None:
    out = tmp_path / "sb"
    r = runner.invoke(app, ["experiments", "switchback", "--store", str(tiny_store.paths.root),
                            "--policies", "static,elasticity_optimal", "--weeks", "2",
                            "--format", "json", "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    body = json.loads((out / "report.json").read_text())
    assert body["unit"] == "slot" and body["control"] == "static"
    assert {m["metric"] for m in body["metrics"]} == {"revenue", "margin"}
