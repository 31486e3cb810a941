"""Tests for training.data.summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from training.data.import_report import ImportReport
from training.data.readers import read_events
from training.data.summary import summarize, summarize_dataset
from training.data.synthetic import SyntheticStore


def test_hand_counted_summary(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,event_type,timestamp,unit_price,session_id\n"
        "u1,i1,view,2026-01-01T10:00:00Z,5,s1\n"
        "u1,i1,purchase,2026-01-01T10:01:00Z,5,s1\n"
        "u2,i2,view,2026-01-03T09:00:00Z,7,s2\n"
        "u2,i1,purchase,2026-01-05T09:00:00Z,5,\n"
        "u3,i3,impression,2026-01-04T09:00:00Z,1,s3\n"
    )
    report = ImportReport(source="test", source_path=str(path), source_rows=9)
    report.drop("missing customer", 3)
    report.drop("non-product stock code", 1)
    s = summarize(read_events(path), report=report)
    assert (s.rows, s.users, s.items, s.sessions) == (5, 3, 3, 3)
    assert s.first == pd.Timestamp("2026-01-01 10:00", tz="UTC")
    assert s.last == pd.Timestamp("2026-01-05 09:00", tz="UTC")
    assert s.events_by_type == {
        "impression": 1,
        "view": 2,
        "click": 0,
        "add_to_cart": 0,
        "purchase": 2,
        "return": 0,
    }
    assert s.purchases == {"rows": 2, "users": 2, "items": 1, "sessions": 1}
    assert s.dropped == {"missing customer": 3, "non-product stock code": 1}
    assert s.dropped_total == 4
    assert s.source_rows == 9
    assert s.catalog_items is None


def test_summary_of_the_tiny_store(tiny_store: SyntheticStore) -> None:
    s = summarize_dataset(tiny_store.paths.root)
    ev = tiny_store.events
    assert s.rows == len(ev) == sum(s.events_by_type.values())
    assert s.users == ev["user_id"].nunique()
    assert s.catalog_items == len(tiny_store.items)
    assert s.profile_users == len(tiny_store.users)
    assert s.first >= pd.Timestamp("2026-01-01", tz="UTC")
    assert s.last < pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=45)
    assert s.dropped == {} and s.source_rows is None
