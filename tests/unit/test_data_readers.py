"""Tests for training.data.readers (Parquet and CSV into canonical dtypes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairshelf.errors import DataValidationError, NotFound
from recsys.schema import EVENT_COLUMNS, EVENT_TYPES, ITEM_COLUMNS
from training.data.canonical import EVENT_DTYPES
from training.data.readers import find_table, read_dataset, read_events, read_items
from training.data.synthetic import SyntheticStore


@pytest.mark.parametrize("name", ["events.csv", "events.csv.gz", "events.parquet"])
def test_round_trip_of_the_synthetic_events(
    tiny_store: SyntheticStore, tmp_path: Path, name: str
) -> None:
    events = tiny_store.events.head(500)
    path = tmp_path / name
    if name.endswith(".parquet"):
        events.to_parquet(path, index=False)
    else:
        events.to_csv(path, index=False)
    back = read_events(path)
    pd.testing.assert_frame_equal(back, events.reset_index(drop=True))


def test_round_trip_of_items_with_null_stock(tiny_store: SyntheticStore, tmp_path: Path) -> None:
    items = tiny_store.items.head(20).copy()
    items.loc[items.index[:3], "stock"] = pd.NA
    for path in (tmp_path / "items.csv", tmp_path / "items.parquet"):
        if path.suffix == ".csv":
            items.to_csv(path, index=False)
        else:
            items.to_parquet(path, index=False)
        back = read_items(path)
        pd.testing.assert_frame_equal(back, items.reset_index(drop=True))
        assert back["stock"].isna().sum() == 3


def test_minimal_file_gets_optional_columns_and_utc(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pd.DataFrame(
        {
            "user_id": [17850, 13047],  # numeric ids become text
            "item_id": ["A1", "B2"],
            "event_type": ["Purchase", "view"],  # case is forgiven
            "timestamp": pd.to_datetime(["2011-01-01 10:00", "2011-01-02 11:30"]),  # naive
            "unit_price": [2.5, 3],
            "colour": ["red", "blue"],  # free attribute survives
        }
    ).to_parquet(path, index=False)
    ev = read_events(path)
    assert list(ev.columns) == [*EVENT_COLUMNS, "colour"]
    assert ev["user_id"].tolist() == ["17850", "13047"]
    assert ev["event_type"].tolist() == ["purchase", "view"]
    assert str(ev["timestamp"].dt.tz) == "UTC"
    assert ev["timestamp"].iloc[0] == pd.Timestamp("2011-01-01 10:00", tz="UTC")
    assert ev["quantity"].tolist() == [1, 1]
    assert ev["session_id"].isna().all()


def test_timestamps_with_offsets_are_converted(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,event_type,timestamp,unit_price\n"
        "u,i,view,2026-03-01T12:00:00+08:00,1\n"
        "u,i,view,1767261600,1\n"
    )
    with pytest.raises(DataValidationError, match="unparsable timestamp") as info:
        read_events(path)
    assert info.value.row == 2  # Unix seconds in a CSV text column are not ISO 8601
    path.write_text(
        "user_id,item_id,event_type,timestamp,unit_price\nu,i,view,2026-03-01T12:00:00+08:00,1\n"
    )
    assert read_events(path)["timestamp"].iloc[0] == pd.Timestamp("2026-03-01 04:00", tz="UTC")


def test_read_dataset(tiny_store: SyntheticStore, tmp_path: Path) -> None:
    events, items, users = read_dataset(tiny_store.paths.root)
    assert len(events) == len(tiny_store.events)
    assert items is not None and list(items.columns)[: len(ITEM_COLUMNS)] == list(ITEM_COLUMNS)
    assert users is not None and len(users) == len(tiny_store.users)
    with pytest.raises(NotFound):
        read_dataset(tmp_path / "nowhere")
    with pytest.raises(NotFound, match="no events"):
        read_dataset(tmp_path)


def test_a_table_stored_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text("x\n1\n")
    (tmp_path / "events.parquet").write_bytes(b"x")
    with pytest.raises(DataValidationError, match="stored twice"):
        find_table(tmp_path, "events")
    assert find_table(tmp_path, "items") is None


_ID = st.text(alphabet="abcXYZ0123456789-_", min_size=1, max_size=8)


@st.composite
def _event_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=6))
    stamp = st.integers(min_value=0, max_value=2_000_000_000_000_000).map(
        lambda us: pd.Timestamp(us, unit="us", tz="UTC")
    )
    rows = {
        "event_id": draw(st.lists(_ID, min_size=n, max_size=n)),
        "user_id": draw(st.lists(_ID, min_size=n, max_size=n)),
        "item_id": draw(st.lists(_ID, min_size=n, max_size=n)),
        "event_type": draw(st.lists(st.sampled_from(EVENT_TYPES), min_size=n, max_size=n)),
        "timestamp": draw(st.lists(stamp, min_size=n, max_size=n)),
        "quantity": draw(st.lists(st.integers(1, 1000), min_size=n, max_size=n)),
        "unit_price": draw(
            st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), min_size=n, max_size=n)
        ),
        "session_id": draw(st.lists(st.none() | _ID, min_size=n, max_size=n)),
        "channel": draw(
            st.lists(st.none() | st.sampled_from(["app", "web"]), min_size=n, max_size=n)
        ),
        "region": draw(st.lists(st.none() | _ID, min_size=n, max_size=n)),
    }
    return pd.DataFrame(rows).astype(EVENT_DTYPES)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=_event_frames())
def test_any_valid_event_table_round_trips(tmp_path: Path, frame: pd.DataFrame) -> None:
    for name in ("events.csv", "events.parquet"):
        path = tmp_path / name
        if name.endswith(".csv"):
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        pd.testing.assert_frame_equal(read_events(path), frame)
