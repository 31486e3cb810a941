"""training.data.rejects and the lenient reader: planted bad rows come out, exactly them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairshelf.errors import DataValidationError
from training.data.readers import read_checked, read_lenient
from training.data.synthetic import SyntheticStore

# data row (1-based) -> reason planted there
EVENT_PLANTS = {
    3: ("user_id", "missing_user_id"),
    10: ("event_type", "unknown_event_type"),
    11: ("timestamp", "bad_timestamp"),
    25: ("unit_price", "negative_unit_price"),
    26: ("unit_price", "bad_unit_price"),
    40: ("quantity", "bad_quantity"),
}


def plant_events(frame: pd.DataFrame) -> pd.DataFrame:
    """A string copy of ``frame`` with one bad cell per planted row."""
    raw = frame.head(60).astype("object").astype(str).copy()
    values = {
        "missing_user_id": "",
        "unknown_event_type": "teleport",
        "bad_timestamp": "yesterday-ish",
        "negative_unit_price": "-3.5",
        "bad_unit_price": "cheap",
        "bad_quantity": "0",
    }
    for row, (col, reason) in EVENT_PLANTS.items():
        raw.iloc[row - 1, raw.columns.get_loc(col)] = values[reason]
    return raw


def test_planted_event_rows_are_listed_exactly(tiny_store: SyntheticStore, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    plant_events(tiny_store.events).to_csv(path, index=False)
    with pytest.raises(DataValidationError):
        read_checked(path, "events", "fail")
    events, rejects = read_lenient(path, "events")
    rows = rejects.rows
    assert dict(zip(rows["row"], rows["reason"], strict=True)) == {
        r: reason for r, (_, reason) in EVENT_PLANTS.items()
    }
    assert set(rows["action"]) == {"dropped"}
    assert len(events) == 60 - len(EVENT_PLANTS)
    assert rejects.counts()["dropped/bad_quantity"] == 1
    # The reject list keeps the row as it was, so it can be fixed and replayed.
    assert "teleport" in rows.set_index("row").loc[10, "values"]


def test_items_without_usable_price_are_kept_unpriced(
    tiny_store: SyntheticStore, tmp_path: Path
) -> None:
    raw = tiny_store.items.head(30).astype("object").astype(str).copy()
    raw.loc[4, "base_price"] = "0"
    raw.loc[7, "base_price"] = ""
    raw.loc[9, "item_id"] = raw.loc[8, "item_id"]
    raw.loc[12, "title"] = ""
    path = tmp_path / "items.csv"
    raw.to_csv(path, index=False)
    items, rejects = read_lenient(path, "items")
    got = {
        (int(r), str(reason), str(a))
        for r, reason, a in rejects.rows[["row", "reason", "action"]].to_numpy()
    }
    assert got == {
        (5, "no_usable_base_price", "kept_unpriced"),
        (8, "no_usable_base_price", "kept_unpriced"),
        (10, "duplicate_item_id", "dropped"),
        (13, "missing_title", "dropped"),
    }
    assert len(items) == 28
    unpriced = items.set_index("item_id").loc[[raw.loc[4, "item_id"], raw.loc[7, "item_id"]]]
    assert np.isnan(unpriced["base_price"]).all()


def test_a_file_missing_a_required_column_still_fails(
    tiny_store: SyntheticStore, tmp_path: Path
) -> None:
    path = tmp_path / "events.csv"
    tiny_store.events.head(5).drop(columns=["timestamp"]).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="timestamp"):
        read_lenient(path, "events")
