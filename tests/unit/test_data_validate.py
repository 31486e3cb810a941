"""Tests for training.data.validate, through training.data.readers on real small files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fairshelf.errors import DataValidationError
from training.data.readers import read_events, read_items, read_users

GOOD_EVENTS = [
    {
        "event_id": "e1",
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "view",
        "timestamp": "2026-01-01T10:00:00Z",
        "unit_price": "9.99",
    },
    {
        "event_id": "e2",
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "purchase",
        "timestamp": "2026-01-01T10:05:00Z",
        "unit_price": "9.99",
    },
    {
        "event_id": "e3",
        "user_id": "u2",
        "item_id": "i2",
        "event_type": "click",
        "timestamp": "2026-01-02T08:00:00Z",
        "unit_price": "4.50",
    },
]


def _write(rows: list[dict[str, str]], path: Path) -> Path:
    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _broken(column: str, value: str, row: int) -> list[dict[str, str]]:
    rows = [dict(r) for r in GOOD_EVENTS]
    rows[row - 1][column] = value
    return rows


CASES = [
    ("timestamp", "yesterday-ish", 2, "unparsable timestamp"),
    ("unit_price", "-3.00", 3, "negative"),
    ("unit_price", "abc", 1, "not a number"),
    ("event_type", "wishlist", 2, "unknown event type"),
    ("user_id", "", 3, "missing id"),
    ("item_id", "", 1, "missing id"),
]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(("column", "value", "row", "what"), CASES)
def test_bad_cell_names_file_row_and_column(
    tmp_path: Path, suffix: str, column: str, value: str, row: int, what: str
) -> None:
    path = _write(_broken(column, value, row), tmp_path / f"events{suffix}")
    with pytest.raises(DataValidationError) as info:
        read_events(path)
    message = str(info.value)
    assert str(path) in message
    assert f"row {row}" in message
    assert repr(column) in message
    assert what in message
    assert info.value.row == row and info.value.column == column
    if suffix == ".csv":
        assert f"line {row + 1}" in message


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_missing_required_column(tmp_path: Path, suffix: str) -> None:
    rows = [{k: v for k, v in r.items() if k != "timestamp"} for r in GOOD_EVENTS]
    path = _write(rows, tmp_path / f"events{suffix}")
    with pytest.raises(DataValidationError) as info:
        read_events(path)
    message = str(info.value)
    assert str(path) in message and "'timestamp'" in message
    assert "header row" in message and "missing required column" in message


def test_empty_files(tmp_path: Path) -> None:
    zero = tmp_path / "events.csv"
    zero.write_bytes(b"")
    with pytest.raises(DataValidationError, match="empty") as info:
        read_events(zero)
    assert str(zero) in str(info.value)

    header_only = tmp_path / "items.csv"
    header_only.write_text("item_id,title,category,base_price\n")
    with pytest.raises(DataValidationError, match="no data rows"):
        read_items(header_only)

    empty_parquet = tmp_path / "events.parquet"
    pd.DataFrame({c: pd.Series([], dtype="str") for c in GOOD_EVENTS[0]}).to_parquet(empty_parquet)
    with pytest.raises(DataValidationError, match="no data rows"):
        read_events(empty_parquet)


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    path.write_text("this is not parquet")
    with pytest.raises(DataValidationError, match="not a readable Parquet file"):
        read_events(path)


def test_quantity_must_be_a_positive_whole_number(tmp_path: Path) -> None:
    rows = [dict(r, quantity="1") for r in GOOD_EVENTS]
    rows[1]["quantity"] = "0"
    with pytest.raises(DataValidationError, match="must be >= 1") as info:
        read_events(_write(rows, tmp_path / "events.csv"))
    assert info.value.row == 2 and info.value.column == "quantity"
    rows[1]["quantity"] = "1.5"
    with pytest.raises(DataValidationError, match="whole number"):
        read_events(_write(rows, tmp_path / "events.csv"))


def test_items_rules(tmp_path: Path) -> None:
    good = [
        {"item_id": "i1", "title": "Mug", "category": "home/kitchen", "base_price": "5"},
        {"item_id": "i2", "title": "Pan", "category": "home/kitchen", "base_price": "20"},
    ]
    read_items(_write(good, tmp_path / "items.csv"))
    dup = [good[0], dict(good[1], item_id="i1")]
    with pytest.raises(DataValidationError, match="duplicate item_id") as info:
        read_items(_write(dup, tmp_path / "items.csv"))
    assert info.value.row == 2
    negative = [good[0], dict(good[1], base_price="-1")]
    with pytest.raises(DataValidationError, match="negative") as info:
        read_items(_write(negative, tmp_path / "items.csv"))
    assert info.value.row == 2 and info.value.column == "base_price"
    no_title = [good[0], dict(good[1], title="  ")]
    with pytest.raises(DataValidationError, match="missing value") as info:
        read_items(_write(no_title, tmp_path / "items.csv"))
    assert info.value.column == "title"
    bad_stock = [dict(good[0], stock="3"), dict(good[1], stock="-2")]
    with pytest.raises(DataValidationError, match="negative") as info:
        read_items(_write(bad_stock, tmp_path / "items.csv"))
    assert info.value.column == "stock"


def test_users_need_unique_ids(tmp_path: Path) -> None:
    path = _write([{"user_id": "u1"}, {"user_id": "u1"}], tmp_path / "users.csv")
    with pytest.raises(DataValidationError, match="duplicate user_id") as info:
        read_users(path)
    assert info.value.row == 2
    no_id = _write([{"name": "x"}], tmp_path / "users.parquet")
    with pytest.raises(DataValidationError, match="missing required column"):
        read_users(no_id)
