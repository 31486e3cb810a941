"""Experiment readouts from the stores: exposures and events in, :class:`Readout` out.

The one place that reads the exposure log and the event log for an experiment and hands them
to :func:`experiments.readout.build_readout`; the API (``GET /v1/experiments/{name}/report``),
the command line and the demo all go through it, so they show the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from experiments.attribution import DEFAULT_LOOKBACK, DEFAULT_WINDOW, attribute
from experiments.readout import Readout, build_readout
from fairshelf.errors import InvalidArgument, NotFound
from serving.store.db import Database
from serving.store.events_store import EventsStore
from serving.store.exposures_store import ExposuresStore


class ExperimentReports:
    """Builds readouts over one database.

    Parameters
    ----------
    db:
        The database holding the ``exposures`` and ``events`` tables.
    splits:
        Experiment name -> configured split, for the sample-ratio test. An experiment not
        listed is tested against equal shares over the variants it exposed (said in a note).
    """

    def __init__(self, db: Database, splits: Mapping[str, Mapping[str, float]] | None = None):
        self.exposures = ExposuresStore(db)
        self.events = EventsStore(db)
        self.splits = dict(splits or {})

    def readout(
        self,
        name: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        window: timedelta = DEFAULT_WINDOW,
        lookback: timedelta = DEFAULT_LOOKBACK,
        control: str | None = None,
        alpha: float = 0.05,
    ) -> Readout:
        """The readout of experiment ``name`` over ``[since, until]``.

        Raises
        ------
        NotFound
            If the experiment has never been exposed (the message lists those that were).
        InvalidArgument
            If the window is empty or inverted, or holds a single variant.
        """
        known = self.exposures.experiments()
        if name not in known:
            listed = ", ".join(repr(k) for k in known) or "none yet"
            raise NotFound(f"no exposures of an experiment named {name!r}; experiments: {listed}")
        if since is not None and until is not None and since >= until:
            raise InvalidArgument(
                f"since ({since.isoformat()}) must be before until ({until.isoformat()})",
                field="since",
            )
        exposures = self.exposures.read(name, since, until)
        if exposures.empty:
            span = f"{since.isoformat() if since else 'the start'} and "
            span += until.isoformat() if until else "now"
            raise InvalidArgument(
                f"experiment {name!r} has no exposures between {span}", field="since"
            )
        first = exposures["ts"].min().to_pydatetime()
        events = self.events.read_canonical(
            since=first - lookback - timedelta(microseconds=1), until=until
        )
        events = events[events["user_id"].isin(set(exposures["user_id"]))]
        split = self.splits.get(name)
        notes = []
        if split is None:
            seen = sorted(set(exposures["variant"]))
            split = {v: 1.0 / len(seen) for v in seen}
            notes.append("no configured split known for this experiment: equal shares assumed")
        readout = build_readout(
            exposures,
            events,
            experiment=name,
            shares=split,
            control=control,
            since=since,
            until=until,
            window=window,
            lookback=lookback,
            alpha=alpha,
        )
        readout.notes.extend(notes)
        return readout

    def history(self, days: int = 14) -> tuple[pd.DataFrame, np.ndarray]:
        """Shoppers active in the last ``days`` days of the event log, with the ``days``
        before as covariate, and the distinct shoppers seen by the end of each day.

        Raises
        ------
        InvalidArgument
            If the event log is empty.
        """
        if days < 1:
            raise InvalidArgument(f"history days must be >= 1, got {days}", field="history_days")
        events = self.events.read_canonical()
        if events.empty:
            raise InvalidArgument("the event log is empty: no history to plan from", field="db")
        end = events["timestamp"].max()
        cut = end - pd.Timedelta(days=days)
        later = events[events["timestamp"] > cut]
        first_seen = later.groupby("user_id")["timestamp"].min()
        # Each shopper "exposed" at their first event of the later window, on a blank list.
        pseudo = pd.DataFrame(
            {"user_id": first_seen.index, "variant": "history", "ts": first_seen.to_numpy()}
        )
        pseudo["items"] = [[] for _ in range(len(pseudo))]
        units = attribute(pseudo, events, lookback=timedelta(days=days))
        day = ((first_seen - cut) / pd.Timedelta(days=1)).clip(upper=days - 1e-9)
        counts = np.bincount(np.floor(day.to_numpy(dtype=np.float64)).astype(int), minlength=days)
        return units, np.cumsum(counts[:days]).astype(np.float64)
