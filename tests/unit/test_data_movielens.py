"""Tests for training.data.adapters.movielens on hand-built tables shaped like the source."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fairshelf.errors import DataValidationError, NotFound
from training.data.adapters.movielens import (
    GENRES,
    PLACEHOLDER_PRICE,
    REASON_UNKNOWN_ITEM,
    convert_movielens,
    import_movielens,
)
from training.data.readers import read_dataset


def _ratings() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.Series([1, 1, 2, 2, 3], dtype="int32"),
            "item_id": pd.Series([10, 20, 10, 30, 99], dtype="int32"),
            "rating": pd.Series([5, 3, 4, 1, 5], dtype="int8"),
            "timestamp": pd.Series(
                [874724710, 874724800, 874800000, 874800100, 874900000], dtype="int32"
            ),
            "u_fold": pd.Series([1, 2, 3, 4, 5], dtype="int8"),
        }
    )


def _items() -> pd.DataFrame:
    flags = {f"genre_{g}": [False, False, False] for g in GENRES}
    flags["genre_comedy"] = [True, False, False]
    flags["genre_animation"] = [True, False, False]
    flags["genre_drama"] = [False, True, False]
    flags["genre_unknown"] = [False, False, True]
    return pd.DataFrame(
        {
            "item_id": pd.Series([10, 20, 30], dtype="int32"),
            "title": ["Toy Story (1995)", "Heat (1995) ", "unknown"],
            **flags,
        }
    )


def _users() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.Series([1, 2, 3], dtype="int32"),
            "age": [24, 53, 23],
            "gender": ["M", "F", "M"],
            "occupation": ["technician", "other", "writer"],
            "zip_code": ["85711", "94043", "32067"],
        }
    )


def test_every_rating_is_a_view_and_good_ones_are_purchases() -> None:
    data = convert_movielens(_ratings(), _items(), _users())
    ev = data.events
    views = ev[ev["event_type"] == "view"]
    buys = ev[ev["event_type"] == "purchase"]
    assert len(views) == 4  # item 99 is not in the catalog
    assert sorted(buys["event_id"]) == ["1-10-purchase", "2-10-purchase"]
    assert (ev["unit_price"] == PLACEHOLDER_PRICE).all()
    assert ev["timestamp"].iloc[0] == pd.Timestamp(874724710, unit="s", tz="UTC")
    # A purchase comes right after its view.
    first = ev[ev["user_id"] == "1"]["event_type"].tolist()
    assert first[:2] == ["view", "purchase"]
    assert data.report.dropped[REASON_UNKNOWN_ITEM] == 1
    assert "rating" in ev.columns


def test_items_get_a_genre_path_and_an_honest_price() -> None:
    items = convert_movielens(_ratings(), _items(), None).items.set_index("item_id")
    # GroupLens genre order: animation comes before comedy.
    assert items.loc["10", "category"] == "movies/animation"
    assert items.loc["10", "genres"] == "animation|comedy"
    assert items.loc["20", "category"] == "movies/drama"
    assert items.loc["30", "category"] == "movies/unknown"
    assert items.loc["20", "title"] == "Heat (1995)"
    assert (items["base_price"] == 1.0).all() and items["stock"].isna().all()


def test_users_keep_their_profile(tmp_path: Path) -> None:
    src = tmp_path / "ml"
    src.mkdir()
    _ratings().to_parquet(src / "ratings.parquet", index=False)
    _items().to_parquet(src / "items.parquet", index=False)
    _users().to_csv(src / "users.csv", index=False)
    report = import_movielens(src, tmp_path / "out")
    events, _items_out, users = read_dataset(tmp_path / "out")
    assert len(events) == report.events == 6
    assert users is not None and users.set_index("user_id").loc["2", "occupation"] == "other"
    assert report.reference["measured"]["positive_ratings"] == 2


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="'rating'"):
        convert_movielens(_ratings().drop(columns="rating"), _items(), None)
    with pytest.raises(NotFound, match="ratings"):
        import_movielens(tmp_path, tmp_path / "out")
