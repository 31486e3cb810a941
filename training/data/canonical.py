"""Canonical in-memory dtypes for the three tables of the data contract (SPEC §3).

Column names come from ``recsys.schema``; this module only says how each column is held in a
pandas DataFrame once a reader, an adapter or the generator has produced it, so that every
consumer (trainer, simulator, event API) can rely on one representation.
"""

from __future__ import annotations

from typing import Final

from recsys.schema import EVENT_COLUMNS, ITEM_COLUMNS, USER_COLUMNS

# Microsecond resolution keeps Parquet round trips exact and covers any plausible date.
TIMESTAMP_DTYPE: Final = "datetime64[us, UTC]"

EVENT_DTYPES: Final[dict[str, str]] = {
    "event_id": "str",
    "user_id": "str",
    "item_id": "str",
    "event_type": "str",
    "timestamp": TIMESTAMP_DTYPE,
    "quantity": "int64",
    "unit_price": "float64",
    "session_id": "str",
    "channel": "str",
    "region": "str",
}

# ``stock`` is nullable: real sources (Online Retail, MovieLens) do not know it.
ITEM_DTYPES: Final[dict[str, str]] = {
    "item_id": "str",
    "title": "str",
    "category": "str",
    "brand": "str",
    "base_price": "float64",
    "unit_cost": "float64",
    "stock": "Int64",
}

USER_DTYPES: Final[dict[str, str]] = {"user_id": "str"}

assert set(EVENT_DTYPES) == set(EVENT_COLUMNS)
assert set(ITEM_DTYPES) == set(ITEM_COLUMNS)
assert set(USER_DTYPES) == set(USER_COLUMNS)
