"""Adapter for MovieLens 100k (943 users rating 1,682 movies, 1997-09 .. 1998-04).

Mapping (docs/data.md has the full table):

- every rating is a ``view`` event; a rating of 4 or 5 is also a ``purchase`` event at the same
  instant (the usual "liked it" threshold for implicit-feedback evaluation). The rating is kept
  as an extra ``rating`` column;
- ``event_id`` = ``<user>-<item>-view`` / ``<user>-<item>-purchase`` (each pair occurs once);
- category = ``movies/<first genre>`` in the GroupLens genre order, with every genre kept in
  an extra ``genres`` column (``|``-separated);
- MovieLens has no prices: ``base_price`` and ``unit_price`` are set to 1.0 as a neutral
  placeholder, so this data set is for recommendation work only, never for price work;
- users keep their profile fields (age, gender, occupation, zip code): usable for
  recommendations, never an input to a price.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from fairshelf.errors import DataValidationError, NotFound
from training.data.canonical import EVENT_DTYPES, ITEM_DTYPES
from training.data.import_report import ImportedData, ImportReport
from training.data.readers import read_raw
from training.data.validate import validate_events, validate_items, validate_users

PLACEHOLDER_PRICE: Final[float] = 1.0
POSITIVE_RATING: Final[int] = 4
GENRES: Final[tuple[str, ...]] = (
    "unknown",
    "action",
    "adventure",
    "animation",
    "childrens",
    "comedy",
    "crime",
    "documentary",
    "drama",
    "fantasy",
    "film_noir",
    "horror",
    "musical",
    "mystery",
    "romance",
    "sci_fi",
    "thriller",
    "war",
    "western",
)
RATING_COLUMNS: Final[tuple[str, ...]] = ("user_id", "item_id", "rating", "timestamp")
REASON_UNKNOWN_ITEM: Final[str] = "rating of an item missing from items"
REASON_BAD_RATING: Final[str] = "rating outside 1..5"


def _require(df: pd.DataFrame, columns: tuple[str, ...], file: str) -> None:
    for column in columns:
        if column not in df.columns:
            raise DataValidationError(
                "missing source column in the header", file=file, column=column
            )
    if len(df) == 0:
        raise DataValidationError("file has no data rows", file=file)


def _flag(column: pd.Series) -> np.ndarray:
    """A genre flag as booleans, whether stored as bool, 0/1 or text (CSV)."""
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
        return np.asarray(column.fillna(0).astype(bool).to_numpy(), dtype=bool)
    text = column.astype("str").str.strip().str.lower()
    return np.asarray(text.isin(["true", "1", "yes"]).to_numpy(), dtype=bool)


def _genres(items: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Primary category path and all genres of each movie."""
    present = [g for g in GENRES if f"genre_{g}" in items.columns]
    flags = (
        np.column_stack([_flag(items[f"genre_{g}"]) for g in present])
        if present
        else np.zeros((len(items), 0), dtype=bool)
    )
    names = np.array(present, dtype=object)
    # "unknown" is GroupLens' flag for no genre: only used when nothing else is set.
    real = flags.copy()
    if present and present[0] == "unknown":
        real[:, 0] = False
    chosen = np.where(real.any(axis=1), real.argmax(axis=1), -1)
    primary = [f"movies/{names[c]}" if c >= 0 else "movies/unknown" for c in chosen]
    every = ["|".join(names[row]) for row in flags] if present else [""] * len(items)
    return (
        pd.Series(primary, index=items.index, dtype="str"),
        pd.Series(every, index=items.index, dtype="str"),
    )


def convert_movielens(
    ratings: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame | None,
    *,
    source_path: str = "",
) -> ImportedData:
    """Convert MovieLens 100k tables (the shared Parquet layout) into canonical tables.

    Parameters
    ----------
    ratings:
        ``user_id``, ``item_id``, ``rating`` (1..5), ``timestamp`` (Unix seconds, UTC).
    items:
        ``item_id``, ``title`` and the ``genre_*`` flags.
    users:
        ``user_id`` and profile fields, or None.
    source_path:
        Named in error messages and in the report.

    Returns
    -------
    ImportedData
        Views and purchases, movies as items, users with their profile.

    Raises
    ------
    DataValidationError
        If a source column is missing or a table is empty.
    """
    base = source_path or "movielens"
    _require(ratings, RATING_COLUMNS, f"{base}/ratings")
    _require(items, ("item_id", "title"), f"{base}/items")
    report = ImportReport(source="movielens", source_path=source_path, source_rows=len(ratings))

    r = ratings.reset_index(drop=True)
    user = pd.to_numeric(r["user_id"], errors="coerce").astype("Int64").astype("str")
    item = pd.to_numeric(r["item_id"], errors="coerce").astype("Int64").astype("str")
    rating = pd.to_numeric(r["rating"], errors="coerce")
    item_table = items.reset_index(drop=True).copy()
    item_table["item_id"] = (
        pd.to_numeric(item_table["item_id"], errors="coerce").astype("Int64").astype("str")
    )

    bad_rating = ~rating.between(1, 5)
    unknown = ~item.isin(item_table["item_id"]) & ~bad_rating
    report.drop(REASON_BAD_RATING, int(bad_rating.sum()))
    report.drop(REASON_UNKNOWN_ITEM, int(unknown.sum()))
    keep = (~bad_rating & ~unknown).to_numpy()

    ts = pd.to_datetime(pd.to_numeric(r["timestamp"], errors="coerce"), unit="s", utc=True)
    view = pd.DataFrame(
        {
            "event_id": (user + "-" + item + "-view")[keep],
            "user_id": user[keep],
            "item_id": item[keep],
            "event_type": "view",
            "timestamp": ts[keep],
            "quantity": 1,
            "unit_price": PLACEHOLDER_PRICE,
            "session_id": None,
            "channel": None,
            "region": None,
            "rating": rating[keep].astype("int64"),
        }
    )
    liked = view[view["rating"] >= POSITIVE_RATING].copy()
    liked["event_type"] = "purchase"
    liked["event_id"] = liked["event_id"].str.replace("-view", "-purchase", regex=False)
    events = pd.concat([view, liked], ignore_index=True)
    events = events.astype({**EVENT_DTYPES, "rating": "int64"})
    # A purchase follows its view at the same instant: order by intent inside a timestamp.
    intent = (events["event_type"] == "purchase").astype("int64")
    events = (
        events.assign(_intent=intent)
        .sort_values(["timestamp", "user_id", "item_id", "_intent"], kind="stable")
        .drop(columns="_intent")
        .reset_index(drop=True)
    )
    report.converted["rating -> view event"] = len(view)
    report.converted[f"rating >= {POSITIVE_RATING} -> also a purchase event"] = len(liked)

    primary, every = _genres(item_table)
    item_out = pd.DataFrame(
        {
            "item_id": item_table["item_id"],
            "title": item_table["title"].astype("str").str.strip(),
            "category": primary,
            "brand": None,
            "base_price": PLACEHOLDER_PRICE,
            "unit_cost": np.nan,
            "stock": pd.Series([pd.NA] * len(item_table), dtype="Int64"),
            "genres": every,
        }
    ).astype({**ITEM_DTYPES, "genres": "str"})
    if "release_date" in item_table.columns:
        item_out["release_date"] = item_table["release_date"].astype("str")

    user_out = None
    if users is not None:
        _require(users, ("user_id",), f"{base}/users")
        user_out = users.reset_index(drop=True).copy()
        user_out["user_id"] = (
            pd.to_numeric(user_out["user_id"], errors="coerce").astype("Int64").astype("str")
        )

    report.reference = {
        "grouplens_readme": {"ratings": 100_000, "users": 943, "items": 1_682},
        "measured": {
            "ratings": int(keep.sum()),
            "users": int(view["user_id"].nunique()),
            "items_rated": int(view["item_id"].nunique()),
            "items_in_catalog": len(item_out),
            "positive_ratings": len(liked),
        },
    }
    report.notes = [
        f"every rating is a view; ratings >= {POSITIVE_RATING} are also purchases",
        "MovieLens has no prices: base_price and unit_price are a 1.0 placeholder; "
        "do not use this data set for price work",
        "category is movies/<first genre>; all genres are in the extra 'genres' column",
        "MovieLens is licensed for research use only: never commit or redistribute it",
    ]
    return ImportedData(
        events=validate_events(events, file=f"{base}/ratings (converted)"),
        items=validate_items(item_out, file=f"{base}/items (converted)"),
        users=validate_users(user_out, file=f"{base}/users") if user_out is not None else None,
        report=report,
    )


def _find(directory: Path, name: str, required: bool) -> Path | None:
    for suffix in (".parquet", ".csv"):
        path = directory / f"{name}{suffix}"
        if path.is_file():
            return path
    if required:
        raise NotFound(f"no {name}.parquet or {name}.csv in {directory}")
    return None


def import_movielens(src: Path | str, out_dir: Path | str) -> ImportReport:
    """Read the MovieLens 100k folder, convert it and write the canonical tables.

    Parameters
    ----------
    src:
        Folder with ``ratings``, ``items`` and optionally ``users`` (Parquet or CSV).
    out_dir:
        Directory for the canonical tables and ``import_report.json``.

    Returns
    -------
    ImportReport
        What was kept, converted and dropped.
    """
    d = Path(src)
    if not d.is_dir():
        raise NotFound(f"no such MovieLens folder: {d}")
    ratings_path = _find(d, "ratings", True)
    items_path = _find(d, "items", True)
    users_path = _find(d, "users", False)
    assert ratings_path is not None and items_path is not None
    data = convert_movielens(
        read_raw(ratings_path),
        read_raw(items_path),
        read_raw(users_path) if users_path else None,
        source_path=str(d),
    )
    data.write(out_dir)
    return data.report
