"""Read, validate and clean a training run's inputs into one prepared data set.

Shared by the trainer and the bundle writer, so that neither imports the other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fairshelf.errors import InvalidArgument
from training.config import TrainConfig
from training.data.readers import read_events, read_items
from training.fit import Catalog


@dataclass
class PreparedData:
    """Canonical events restricted to catalog items and weighted event types."""

    events: pd.DataFrame
    catalog: Catalog
    dropped: dict[str, int]
    fingerprint: str
    events_path: str
    items_path: str


def data_fingerprint(events: pd.DataFrame, items: pd.DataFrame) -> str:
    """sha256 over the content of the events and items tables (order-sensitive)."""
    h = hashlib.sha256()
    for frame in (events, items):
        cols = sorted(frame.columns)
        h.update(",".join(cols).encode())
        h.update(pd.util.hash_pandas_object(frame[cols], index=False).to_numpy().tobytes())
    return h.hexdigest()


def prepare(events_path: str | Path, items_path: str | Path, cfg: TrainConfig) -> PreparedData:
    """Read, validate and clean the inputs; count every row dropped on purpose."""
    events = read_events(events_path)
    items = read_items(items_path)
    fingerprint = data_fingerprint(events, items)
    catalog = Catalog.build(items, cfg.two_tower.price_bands)
    dropped: dict[str, int] = {}
    keep = np.ones(len(events), dtype=bool)
    no_user = events["user_id"].isna().to_numpy()
    dropped["missing_user"] = int(no_user.sum())
    keep &= ~no_user
    weights = events["event_type"].map(cfg.confidence.event_weights).fillna(0.0).to_numpy()
    for etype in sorted(events.loc[keep & (weights <= 0), "event_type"].unique()):
        n = int((keep & (weights <= 0) & (events["event_type"] == etype).to_numpy()).sum())
        dropped[f"event_type_{etype}"] = n
    keep &= weights > 0
    unknown = ~events["item_id"].astype(str).isin(catalog.item_ids).to_numpy()
    dropped["unknown_item"] = int((keep & unknown).sum())
    keep &= ~unknown
    ev = events.loc[keep].reset_index(drop=True)
    if ev.empty:
        raise InvalidArgument(f"no usable events in {events_path} after cleaning: {dropped}")
    return PreparedData(
        events=ev,
        catalog=catalog,
        dropped={k: v for k, v in dropped.items() if v},
        fingerprint=fingerprint,
        events_path=str(events_path),
        items_path=str(items_path),
    )
