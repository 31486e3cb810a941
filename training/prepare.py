"""Read, validate and clean a training run's inputs into one prepared data set.

Shared by the trainer and the bundle writer, so that neither imports the other.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fairshelf.errors import InvalidArgument
from training.config import TrainConfig
from training.data.readers import InvalidRows, read_checked
from training.data.rejects import Rejects
from training.fit import Catalog
from training.ranking import in_background


@dataclass
class PreparedData:
    """Canonical events restricted to catalog items and weighted event types.

    ``digest`` is the data fingerprint or the job computing it (:attr:`fingerprint` waits).
    """

    events: pd.DataFrame
    catalog: Catalog
    dropped: dict[str, int]
    digest: str | Future[str]
    events_path: str
    items_path: str
    rejects: Rejects = field(default_factory=Rejects)

    @property
    def fingerprint(self) -> str:
        """sha256 of the input tables (see :func:`data_fingerprint`)."""
        return self.digest if isinstance(self.digest, str) else self.digest.result()


def data_fingerprint(events: pd.DataFrame, items: pd.DataFrame) -> str:
    """sha256 over the content of the events and items tables (order-sensitive)."""
    h = hashlib.sha256()
    for frame in (events, items):
        cols = sorted(frame.columns)
        h.update(",".join(cols).encode())
        h.update(pd.util.hash_pandas_object(frame[cols], index=False).to_numpy().tobytes())
    return h.hexdigest()


def prepare(
    events_path: str | Path,
    items_path: str | Path,
    cfg: TrainConfig,
    invalid_rows: InvalidRows = "fail",
) -> PreparedData:
    """Read, validate and clean the inputs; count every row dropped on purpose.

    With ``invalid_rows="skip"`` rows that break the data contract are set aside (see
    :mod:`training.data.rejects`) instead of failing the run.
    """
    events, ev_rejects = read_checked(events_path, "events", invalid_rows)
    items, it_rejects = read_checked(items_path, "items", invalid_rows)
    return prepare_frames(
        events, items, cfg, str(events_path), str(items_path), ev_rejects.add(it_rejects)
    )


def prepare_frames(
    events: pd.DataFrame,
    items: pd.DataFrame,
    cfg: TrainConfig,
    events_path: str,
    items_path: str,
    rejects: Rejects | None = None,
) -> PreparedData:
    """Clean canonical events and items already read (the retraining job's entry point).

    Parameters
    ----------
    events, items:
        Canonical, validated tables.
    cfg:
        Trainer configuration (event weights, price bands).
    events_path, items_path:
        Where the tables came from, for the manifest.
    rejects:
        Rows set aside while reading, carried into the report.

    Raises
    ------
    InvalidArgument
        If no usable event is left.
    """
    # Hashing a million rows takes over a second, mostly outside the GIL, and nothing needs
    # the fingerprint until the bundle is written.
    fingerprint = in_background("fairshelf-fingerprint", data_fingerprint, events, items)
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
    rejects = rejects or Rejects()
    dropped.update({f"invalid_{k}": v for k, v in rejects.counts().items()})
    return PreparedData(
        events=ev,
        catalog=catalog,
        dropped={k: v for k, v in dropped.items() if v},
        digest=fingerprint,
        events_path=events_path,
        items_path=items_path,
        rejects=rejects,
    )
