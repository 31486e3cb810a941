"""The lenient reading of ``--invalid-rows skip``: set bad rows aside with a reason each.

The strict validators (:mod:`training.data.validate`) stop at the first bad cell, which is
right for a file someone is preparing by hand and wrong for a nightly job over a million
events where one row is broken. Here every row is checked against the same rules at once;
the rows that break one are taken out and listed with the first rule they break, and the rest
goes through the strict validator unchanged. An item whose base price is missing, unparsable
or not above zero is not dropped: it stays recommendable with no price (``base_price`` null)
and is listed with the action ``kept_unpriced``, so dynamic pricing leaves it out. Problems of
the file as a whole (empty, unreadable, a required column missing) still fail the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from recsys.schema import EVENT_TYPES
from training.data.validate import as_text, parse_timestamps

DROPPED: Final = "dropped"
KEPT_UNPRICED: Final = "kept_unpriced"
REJECT_COLUMNS: Final[tuple[str, ...]] = ("file", "row", "column", "reason", "action", "values")


@dataclass
class Rejects:
    """Rows set aside by a lenient read, in file then row order.

    ``rows`` has the columns of :data:`REJECT_COLUMNS`: ``row`` counts data rows from 1 (as
    the strict validator's messages do), ``values`` is the row's cells as JSON.
    """

    rows: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({c: pd.Series(dtype="object") for c in REJECT_COLUMNS})
    )

    def add(self, other: Rejects) -> Rejects:
        """Both lists, this one first."""
        frames = [f for f in (self.rows, other.rows) if len(f)]
        if not frames:
            return Rejects()
        return Rejects(pd.concat(frames, ignore_index=True))

    def counts(self) -> dict[str, int]:
        """Rows per ``action/reason`` (e.g. ``dropped/bad_timestamp``), sorted by name."""
        if self.rows.empty:
            return {}
        keys = self.rows["action"].astype(str) + "/" + self.rows["reason"].astype(str)
        return {str(k): int(v) for k, v in sorted(keys.value_counts().items())}

    def dropped(self) -> int:
        """Rows taken out of the data."""
        return int((self.rows["action"] == DROPPED).sum()) if len(self.rows) else 0

    def write(self, path: Path) -> Path:
        """Write the list as CSV (an empty list writes the header only)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.rows.to_csv(path, index=False)
        return path


def _values(raw: pd.DataFrame, positions: np.ndarray) -> list[str]:
    sub = raw.iloc[positions].astype("object")
    sub = sub.where(sub.notna(), None)
    return [json.dumps(rec, default=str, sort_keys=True) for rec in sub.to_dict("records")]


def _collect(
    raw: pd.DataFrame, checks: list[tuple[str, str, np.ndarray]], file: str, action: str
) -> tuple[np.ndarray, pd.DataFrame]:
    """The first failed check of each row; returns (failed mask, reject rows)."""
    reason = np.full(len(raw), "", dtype=object)
    column = np.full(len(raw), "", dtype=object)
    for col, name, bad in checks:
        new = bad & (reason == "")
        reason[new] = name
        column[new] = col
    failed = reason != ""
    pos = np.flatnonzero(failed)
    rows = pd.DataFrame(
        {
            "file": file,
            "row": pos + 1,
            "column": column[pos],
            "reason": reason[pos],
            "action": action,
            "values": _values(raw, pos),
        }
    )
    return failed, rows


def _numeric(raw: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, blank, unparsable) of a numeric column (all-blank when it is absent)."""
    n = len(raw)
    if col not in raw.columns:
        return np.full(n, np.nan), np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    cells = raw[col]
    values = pd.to_numeric(cells, errors="coerce").astype("float64").to_numpy()
    blank = (cells.isna() | (cells.astype("str").str.strip() == "")).to_numpy()
    return values, blank, np.isnan(values) & ~blank


def _missing(raw: pd.DataFrame, col: str) -> np.ndarray:
    if col not in raw.columns:
        return np.zeros(len(raw), dtype=bool)
    return as_text(raw[col]).isna().to_numpy()


def split_events(raw: pd.DataFrame, file: str) -> tuple[pd.DataFrame, Rejects]:
    """Take the rows the event contract refuses out of a raw event table.

    Parameters
    ----------
    raw:
        The table as read (required columns present; the strict validator checks that).
    file:
        Name recorded in the reject list.

    Returns
    -------
    (kept, rejects):
        The remaining raw rows (to be validated strictly) and the rows set aside.
    """
    price, price_blank, price_bad = _numeric(raw, "unit_price")
    qty, _, qty_bad = _numeric(raw, "quantity")
    checks = [
        ("user_id", "missing_user_id", _missing(raw, "user_id")),
        ("item_id", "missing_item_id", _missing(raw, "item_id")),
        (
            "event_type",
            "unknown_event_type",
            ~as_text(raw["event_type"]).str.lower().isin(EVENT_TYPES).to_numpy(),
        ),
        ("timestamp", "bad_timestamp", parse_timestamps(raw["timestamp"]).isna().to_numpy()),
        ("unit_price", "bad_unit_price", price_bad),
        ("unit_price", "missing_unit_price", price_blank),
        ("unit_price", "negative_unit_price", price < 0),
        (
            "quantity",
            "bad_quantity",
            qty_bad | (qty < 1) | (np.isfinite(qty) & (qty != np.round(qty))),
        ),
    ]
    failed, rows = _collect(raw, checks, file, DROPPED)
    return raw.loc[~failed].reset_index(drop=True), Rejects(rows)


def split_items(raw: pd.DataFrame, file: str) -> tuple[pd.DataFrame, Rejects]:
    """Take refused rows out of a raw item table and blank unusable base prices.

    Returns
    -------
    (kept, rejects):
        The remaining raw rows, with ``base_price`` emptied where it was unusable (those rows
        are listed with the action ``kept_unpriced``), and the list.
    """
    ids = as_text(raw["item_id"])
    cost, _, cost_bad = _numeric(raw, "unit_cost")
    stock, _, stock_bad = _numeric(raw, "stock")
    checks = [
        ("item_id", "missing_item_id", ids.isna().to_numpy()),
        ("item_id", "duplicate_item_id", (ids.duplicated() & ids.notna()).to_numpy()),
        ("title", "missing_title", _missing(raw, "title")),
        ("category", "missing_category", _missing(raw, "category")),
        ("unit_cost", "bad_unit_cost", cost_bad | (cost < 0)),
        ("stock", "bad_stock", stock_bad | (stock < 0)),
    ]
    failed, rows = _collect(raw, checks, file, DROPPED)
    kept = raw.loc[~failed].reset_index(drop=True)
    price, _, _ = _numeric(kept, "base_price")
    unpriced = ~(price > 0)
    _, priced_rows = _collect(
        kept, [("base_price", "no_usable_base_price", unpriced)], file, KEPT_UNPRICED
    )
    # Row numbers of the kept table are not the file's: map them back.
    priced_rows["row"] = np.flatnonzero(~failed)[priced_rows["row"].to_numpy() - 1] + 1
    kept = kept.copy()
    kept["base_price"] = np.where(unpriced, np.nan, price)
    return kept, Rejects(rows).add(Rejects(priced_rows))
