"""A known effect planted in the synthetic storefront, and the exposures it implies.

Shoppers are split into variants exactly as the server splits them
(:class:`recsys.experiments.VariantAssigner`, same name, salt and split), and from
``start_day`` on a variant's shoppers convert each view into a purchase with the demand law's
probability times that variant's lift. Days before ``start_day`` are untouched: they are the
shoppers' history, the covariate of a CUPED readout. Every session from ``start_day`` on is
one exposure of its shopper, listing the session's impressions in order, so the stored events
and exposures can be read out like those of a live experiment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from recsys.config import ExperimentConfig
from recsys.experiments import VariantAssigner


@dataclass(frozen=True)
class PlantedExperiment:
    """Variants and their true conversion lifts (1.0 = no effect)."""

    name: str = "retriever"
    salt: str = "v1"
    split: dict[str, float] = field(default_factory=lambda: {"control": 0.5, "treatment": 0.5})
    conversion_lift: dict[str, float] = field(default_factory=lambda: {"treatment": 1.2})
    start_day: int = 0

    def assigner(self) -> VariantAssigner:
        """The server's assigner for this experiment."""
        return VariantAssigner(ExperimentConfig(name=self.name, salt=self.salt, split=self.split))


def user_id(index: int) -> str:
    """The synthetic store's id of shopper ``index`` (as written to the event log)."""
    return f"U{index:06d}"


def planted_lift(planted: PlantedExperiment, n_users: int) -> npt.NDArray[np.float64]:
    """The conversion multiplier of each shopper's variant."""
    assign = planted.assigner().assign
    return np.array(
        [planted.conversion_lift.get(assign(user_id(i)), 1.0) for i in range(n_users)],
        dtype=np.float64,
    )


def exposures_from_sessions(events: pd.DataFrame, planted: PlantedExperiment) -> pd.DataFrame:
    """One exposure per session that starts on or after ``start_day``.

    Returns
    -------
    pandas.DataFrame
        Columns ``request_id``, ``experiment``, ``user_id``, ``variant``, ``model_version``,
        ``surface``, ``strategy``, ``latency_us``, ``ts`` and ``items`` (impressed item ids in
        order), as the exposure log stores them.
    """
    start = events["timestamp"].min().normalize() + pd.Timedelta(days=planted.start_day)
    shown = events[(events["event_type"] == "impression") & (events["timestamp"] >= start)]
    shown = shown.sort_values(["timestamp", "event_id"], kind="stable")
    sessions = shown.groupby("session_id", sort=False).agg(
        user_id=("user_id", "first"), ts=("timestamp", "min"), items=("item_id", list)
    )
    assign = planted.assigner().assign
    out = sessions.reset_index(names="request_id").sort_values("ts", kind="stable")
    out["experiment"] = planted.name
    out["variant"] = [assign(u) for u in out["user_id"]]
    out["model_version"] = "synthetic"
    out["surface"] = "home"
    out["strategy"] = "trained_vector"
    out["latency_us"] = 0
    cols = ["request_id", "experiment", "user_id", "variant", "model_version", "surface",
            "strategy", "latency_us", "ts", "items"]  # fmt: skip
    return out[cols].reset_index(drop=True)
