"""Summary of a canonical dataset: sizes, date range, events per type, dropped rows by reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.schema import EVENT_TYPES
from training.data.import_report import ImportReport, read_report
from training.data.readers import read_dataset


@dataclass(frozen=True)
class DatasetSummary:
    """Figures of one dataset.

    Attributes
    ----------
    rows:
        Event rows.
    users, items:
        Distinct users and items that occur in the events.
    catalog_items, profile_users:
        Rows of the items and users files (None when the file is absent).
    sessions:
        Distinct non-null session ids.
    first, last:
        Earliest and latest event timestamp (UTC).
    events_by_type:
        Rows per event type, in the contract's order (zero counts included).
    purchases:
        Purchase rows, purchasing users, purchased items and sessions with a purchase:
        the figures a source's own documentation usually quotes.
    dropped:
        Rows dropped on import, by reason (empty when the dataset was not imported).
    source_rows:
        Rows of the imported source (None when not imported).
    reference:
        The adapter's reconciliation figures (see ``import_report.json``).
    """

    rows: int
    users: int
    items: int
    catalog_items: int | None
    profile_users: int | None
    sessions: int
    first: pd.Timestamp
    last: pd.Timestamp
    events_by_type: dict[str, int]
    purchases: dict[str, int]
    dropped: dict[str, int] = field(default_factory=dict)
    source_rows: int | None = None
    reference: dict[str, Any] = field(default_factory=dict)

    @property
    def dropped_total(self) -> int:
        """All rows dropped on import."""
        return sum(self.dropped.values())


def summarize(
    events: pd.DataFrame,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    report: ImportReport | None = None,
) -> DatasetSummary:
    """Summarise canonical tables.

    Parameters
    ----------
    events:
        Canonical events (validated; at least one row).
    items, users:
        Canonical items and users, when available.
    report:
        The import report, when the dataset came from an adapter.

    Returns
    -------
    DatasetSummary
        The figures.
    """
    counts = events["event_type"].value_counts()
    by_type = {t: int(counts.get(t, 0)) for t in EVENT_TYPES}
    buys = events[events["event_type"] == "purchase"]
    return DatasetSummary(
        rows=len(events),
        users=int(events["user_id"].nunique()),
        items=int(events["item_id"].nunique()),
        catalog_items=None if items is None else len(items),
        profile_users=None if users is None else len(users),
        sessions=int(events["session_id"].nunique(dropna=True)),
        first=pd.Timestamp(events["timestamp"].min()),
        last=pd.Timestamp(events["timestamp"].max()),
        events_by_type=by_type,
        purchases={
            "rows": len(buys),
            "users": int(buys["user_id"].nunique()),
            "items": int(buys["item_id"].nunique()),
            "sessions": int(buys["session_id"].nunique(dropna=True)),
        },
        dropped=dict(report.dropped) if report else {},
        source_rows=report.source_rows if report else None,
        reference=dict(report.reference) if report else {},
    )


def summarize_dataset(directory: Path | str) -> DatasetSummary:
    """Read, validate and summarise a dataset directory.

    Parameters
    ----------
    directory:
        Holds events (and optionally items, users, ``import_report.json``).

    Returns
    -------
    DatasetSummary
        The figures.

    Raises
    ------
    NotFound
        If the directory or its events file is missing.
    DataValidationError
        If a file breaks the data contract.
    """
    events, items, users = read_dataset(directory)
    return summarize(events, items, users, read_report(directory))
