"""training.data.synthetic_experiment: a planted per-variant effect in the synthetic store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.config import ExperimentConfig
from recsys.experiments import VariantAssigner
from training.data.synthetic import generate_store, load_store
from training.data.synthetic_experiment import PlantedExperiment, exposures_from_sessions
from training.data.synthetic_sessions import SessionModel

PLANT = PlantedExperiment(
    name="ranker", split={"a": 0.5, "b": 0.5}, conversion_lift={"b": 2.0}, start_day=10
)


def _purchases_per_view(events: pd.DataFrame, variant: dict[str, str], name: str) -> float:
    ev = events[events["user_id"].map(variant) == name]
    kinds = ev["event_type"].value_counts()
    return float(kinds.get("purchase", 0) / kinds["view"])


def test_the_planted_variant_converts_more_after_the_start_and_not_before(
    tmp_path: Path,
) -> None:
    generate_store(tmp_path / "p", users=1000, items=60, days=20, seed=5,
                   model=SessionModel(planted=PLANT))  # fmt: skip
    events = load_store(tmp_path / "p").events
    start = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=10)
    # The server's own assigner puts each shopper in the variant the store planted.
    assign = VariantAssigner(ExperimentConfig(name="ranker", salt="v1", split=PLANT.split))
    variant = {u: assign.assign(u) for u in events["user_id"].unique()}
    before, after = events[events["timestamp"] < start], events[events["timestamp"] >= start]
    ratio_before = _purchases_per_view(before, variant, "b") / _purchases_per_view(
        before, variant, "a"
    )
    ratio_after = _purchases_per_view(after, variant, "b") / _purchases_per_view(
        after, variant, "a"
    )
    assert 0.75 < ratio_before < 1.33 and ratio_after > 1.5, (ratio_before, ratio_after)
    exposures = exposures_from_sessions(events, PLANT)
    assert (exposures["ts"] >= start).all() and set(exposures["variant"]) == {"a", "b"}
    assert all(len(items) > 0 for items in exposures["items"])
