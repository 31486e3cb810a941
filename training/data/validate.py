"""Check a raw table against the data contract and convert it to canonical dtypes.

Each ``validate_*`` function either returns a clean, canonically typed DataFrame or raises
:class:`~fairshelf.errors.DataValidationError` naming the file, the first bad row and the column,
so that a person can open the file and fix it. Rows are counted from 1 over the data rows; for
CSV files the message also gives the line number, which counts the header.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from fairshelf.errors import DataValidationError
from recsys.schema import EVENT_COLUMNS, EVENT_TYPES, ITEM_COLUMNS, USER_COLUMNS
from training.data.canonical import EVENT_DTYPES, ITEM_DTYPES, TIMESTAMP_DTYPE, USER_DTYPES

ID_COLUMNS: Final[tuple[str, ...]] = ("user_id", "item_id")


class _Where:
    """How to name a file and its rows in messages."""

    def __init__(self, file: str, csv: bool) -> None:
        self.file = file
        self.csv = csv

    def fail(self, message: str, *, position: int | None = None, column: str | None = None) -> None:
        row = None if position is None else position + 1
        if row is not None and self.csv:
            message = f"{message} (data row {row} is line {row + 1} of the CSV, after the header)"
        raise DataValidationError(message, file=self.file, row=row, column=column)


def _check_not_empty(df: pd.DataFrame, where: _Where) -> None:
    if len(df) == 0:
        where.fail("file has no data rows")


def _check_required(df: pd.DataFrame, spec: dict[str, bool], where: _Where) -> None:
    for column, required in spec.items():
        if required and column not in df.columns:
            found = ", ".join(map(str, df.columns)) or "none"
            where.fail(
                f"missing required column in the header row (columns found: {found})",
                column=column,
            )


def _first(mask: pd.Series | np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(mask, dtype=bool))[0])


def as_text(series: pd.Series) -> pd.Series:
    """Strings with blanks as missing; whole-number floats (17850.0) lose their ``.0``."""
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.astype("Float64")
        whole = values.isna() | (values == values.round())
        if bool(whole.all()):
            series = values.astype("Int64")
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("object")
    text = series.astype("str")
    text = text.where(series.notna(), None).astype("str")
    stripped = text.str.strip()
    return stripped.where(stripped != "", None).astype("str")


def _ids(df: pd.DataFrame, columns: tuple[str, ...], where: _Where) -> None:
    for column in columns:
        if column not in df.columns:
            continue
        df[column] = as_text(df[column])
        missing = df[column].isna()
        if bool(missing.any()):
            where.fail("missing id (empty or null)", position=_first(missing), column=column)


def _unique(df: pd.DataFrame, column: str, where: _Where) -> None:
    duplicate = df[column].duplicated()
    if bool(duplicate.any()):
        pos = _first(duplicate)
        where.fail(f"duplicate {column} {df[column].iloc[pos]!r}", position=pos, column=column)


def _numbers(
    df: pd.DataFrame,
    column: str,
    where: _Where,
    *,
    required: bool,
    minimum: float | None = None,
    strictly_positive: bool = False,
) -> None:
    if column not in df.columns:
        return
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        # A numeric column (Parquet) has no text to be blank: formatting a million numbers as
        # strings to look for blanks took longer than reading the file.
        blank = raw.isna()
    else:
        blank = raw.isna() | (raw.astype("str").str.strip() == "")
    unparsable = values.isna() & ~blank
    if bool(unparsable.any()):
        pos = _first(unparsable)
        where.fail(f"not a number: {raw.iloc[pos]!r}", position=pos, column=column)
    if required and bool(blank.any()):
        where.fail("missing value", position=_first(blank), column=column)
    if minimum is not None:
        bad = values < minimum if not strictly_positive else values <= minimum
        if bool(bad.any()):
            pos = _first(bad)
            rule = f"> {minimum:g}" if strictly_positive else f">= {minimum:g}"
            word = "negative" if values.iloc[pos] < 0 else "out of range"
            where.fail(
                f"{word} value {values.iloc[pos]:g} (must be {rule})", position=pos, column=column
            )
    df[column] = values


def parse_timestamps(raw: pd.Series) -> pd.Series:
    """UTC times of a timestamp column (ISO 8601 text, datetimes or epoch seconds); NaT where
    a cell does not parse."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        parsed = raw.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        # Naive times are taken as UTC, the contract's zone (SPEC §3).
        parsed = raw.dt.tz_localize("UTC")
    elif pd.api.types.is_numeric_dtype(raw.dtype):
        parsed = pd.to_datetime(raw, unit="s", utc=True, errors="coerce")
    else:
        text = as_text(raw)
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    return parsed


def _timestamps(df: pd.DataFrame, column: str, where: _Where) -> None:
    raw = df[column]
    parsed = parse_timestamps(raw)
    bad = parsed.isna()
    if bool(bad.any()):
        pos = _first(bad)
        where.fail(f"unparsable timestamp {raw.iloc[pos]!r}", position=pos, column=column)
    df[column] = parsed.astype(TIMESTAMP_DTYPE)


def _ordered(df: pd.DataFrame, spec: dict[str, bool], dtypes: dict[str, str]) -> pd.DataFrame:
    """Canonical columns first (optional ones added as nulls), free attributes after."""
    n = len(df)
    for column in spec:
        if column not in df.columns:
            df[column] = 1 if column == "quantity" else pd.Series([None] * n, dtype=dtypes[column])
    for column, dtype in dtypes.items():
        if dtype == "str":
            df[column] = as_text(df[column])
    extras = [c for c in df.columns if c not in spec]
    out = df[[*spec, *extras]].astype({c: dtypes[c] for c in spec})
    return out.reset_index(drop=True)


def validate_events(raw: pd.DataFrame, *, file: str, csv: bool = False) -> pd.DataFrame:
    """Validate an event table and return it in canonical dtypes.

    Parameters
    ----------
    raw:
        The table as read (any dtypes; CSV tables may be all strings).
    file:
        Name used in error messages.
    csv:
        Whether rows should also be reported as CSV line numbers.

    Returns
    -------
    pandas.DataFrame
        Columns of ``recsys.schema.EVENT_COLUMNS`` in order, then any extra columns.

    Raises
    ------
    DataValidationError
        Empty file, missing required column, missing id, unknown event type, unparsable
        timestamp, unparsable or negative price, quantity below 1.
    """
    where = _Where(file, csv)
    df = raw.copy()
    _check_not_empty(df, where)
    _check_required(df, EVENT_COLUMNS, where)
    _ids(df, ID_COLUMNS, where)
    kinds = as_text(df["event_type"]).str.lower()
    unknown = ~kinds.isin(EVENT_TYPES)
    if bool(unknown.any()):
        pos = _first(unknown)
        where.fail(
            f"unknown event type {df['event_type'].iloc[pos]!r} "
            f"(expected one of {', '.join(EVENT_TYPES)})",
            position=pos,
            column="event_type",
        )
    df["event_type"] = kinds
    _timestamps(df, "timestamp", where)
    _numbers(df, "unit_price", where, required=True, minimum=0.0)
    if "quantity" in df.columns:
        _numbers(df, "quantity", where, required=False, minimum=1.0)
        q = df["quantity"].fillna(1.0)
        fractional = q != q.round()
        if bool(fractional.any()):
            pos = _first(fractional)
            where.fail(
                f"quantity {q.iloc[pos]:g} is not a whole number", position=pos, column="quantity"
            )
        df["quantity"] = q.astype("int64")
    return _ordered(df, EVENT_COLUMNS, EVENT_DTYPES)


def validate_items(
    raw: pd.DataFrame, *, file: str, csv: bool = False, allow_unpriced: bool = False
) -> pd.DataFrame:
    """Validate an item table and return it in canonical dtypes.

    Parameters
    ----------
    raw, file, csv:
        As for :func:`validate_events`.
    allow_unpriced:
        Accept a missing ``base_price`` (an item that is recommended but not priced; the
        lenient reader blanks unusable prices before calling this).

    Returns
    -------
    pandas.DataFrame
        Columns of ``recsys.schema.ITEM_COLUMNS`` in order, then free attributes.

    Raises
    ------
    DataValidationError
        Empty file, missing required column, missing or duplicate ``item_id``, missing title or
        category, base price not above zero, negative cost or stock.
    """
    where = _Where(file, csv)
    df = raw.copy()
    _check_not_empty(df, where)
    _check_required(df, ITEM_COLUMNS, where)
    _ids(df, ("item_id",), where)
    _unique(df, "item_id", where)
    for column in ("title", "category"):
        df[column] = as_text(df[column])
        if bool(df[column].isna().any()):
            where.fail("missing value", position=_first(df[column].isna()), column=column)
    _numbers(
        df,
        "base_price",
        where,
        required=not allow_unpriced,
        minimum=0.0,
        strictly_positive=True,
    )
    _numbers(df, "unit_cost", where, required=False, minimum=0.0)
    _numbers(df, "stock", where, required=False, minimum=0.0)
    if "stock" in df.columns:
        df["stock"] = df["stock"].round().astype("Int64")
    return _ordered(df, ITEM_COLUMNS, ITEM_DTYPES)


def validate_users(raw: pd.DataFrame, *, file: str, csv: bool = False) -> pd.DataFrame:
    """Validate a user table and return it with a canonical ``user_id`` column first.

    Parameters
    ----------
    raw, file, csv:
        As for :func:`validate_events`.

    Returns
    -------
    pandas.DataFrame
        ``user_id`` then the profile fields as given.

    Raises
    ------
    DataValidationError
        Empty file, missing ``user_id`` column, missing or duplicate ids.
    """
    where = _Where(file, csv)
    df = raw.copy()
    _check_not_empty(df, where)
    _check_required(df, USER_COLUMNS, where)
    _ids(df, ("user_id",), where)
    _unique(df, "user_id", where)
    return _ordered(df, USER_COLUMNS, USER_DTYPES)
