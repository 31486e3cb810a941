"""Adapter for the UCI Online Retail file (2010-12-01 .. 2011-12-09, a UK giftware shop).

Mapping (docs/data.md has the full table):

- each invoice line with a customer and a product code becomes a ``purchase`` event
  (``session_id`` = InvoiceNo, ``event_id`` = InvoiceNo + "-" + the line's position in its
  invoice, ``unit_price`` = UnitPrice, ``region`` = Country); cancellation lines (``C``
  invoices) become ``return`` events with a positive quantity;
- dropped, each row counted under the first reason that applies: "bad debt adjustment" (``A``
  invoices), "missing customer", "non-positive quantity (stock adjustment)" (non-cancellation
  lines with Quantity <= 0), "non-positive unit price", "non-product stock code" (postage,
  fees, manual lines, discounts, samples, gift vouchers);
- InvoiceDate is UK local time and is converted to UTC;
- items: title = the most frequent description, stripped; category from keywords
  (:mod:`training.data.adapters.retail_categories`); base_price = median UnitPrice of the
  item's sale lines (customer or not); brand, unit_cost and stock are unknown (null).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from fairshelf.errors import DataValidationError
from training.data.adapters.retail_categories import categories_for
from training.data.canonical import EVENT_DTYPES, ITEM_DTYPES, TIMESTAMP_DTYPE
from training.data.import_report import ImportedData, ImportReport
from training.data.readers import read_raw
from training.data.validate import validate_events, validate_items, validate_users

SOURCE_COLUMNS: Final[tuple[str, ...]] = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
# Products are 5 digits plus optional letters; everything else is postage, fees, etc.
PRODUCT_CODE: Final[str] = r"\d{5}[A-Za-z]*"
SOURCE_TZ: Final[str] = "Europe/London"

# The README's "clean purchases" view: customer present, invoice not C/A, Quantity > 0,
# UnitPrice > 0. Printed beside our figures so that a person can reconcile them.
README_CLEAN_VIEW: Final[dict[str, int]] = {
    "rows": 397_884,
    "customers": 4_338,
    "stock_codes": 3_665,
    "invoices": 18_532,
}

REASON_BAD_DEBT: Final[str] = "bad debt adjustment"
REASON_NO_CUSTOMER: Final[str] = "missing customer"
REASON_ADJUSTMENT: Final[str] = "non-positive quantity (stock adjustment)"
REASON_PRICE: Final[str] = "non-positive unit price"
REASON_NON_PRODUCT: Final[str] = "non-product stock code"


def _text(series: pd.Series) -> pd.Series:
    return series.astype("str").str.strip()


def _customers(series: pd.Series, file: str) -> pd.Series:
    """Customer ids as text; the source stores them as int or as float (17850.0)."""
    values = pd.to_numeric(series, errors="coerce")
    bad = values.notna() & (values != values.round())
    bad |= series.notna() & values.isna()
    if bool(bad.any()):
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(
            f"not a customer number: {series.iloc[pos]!r}",
            file=file,
            row=pos + 1,
            column="CustomerID",
        )
    whole = values.astype("Int64")
    return whole.astype("str").where(whole.notna(), None).astype("str")


def _to_utc(local: pd.Series, file: str) -> pd.Series:
    parsed = pd.to_datetime(local, errors="coerce", format="ISO8601")
    if bool(parsed.isna().any()) and not pd.api.types.is_datetime64_any_dtype(local.dtype):
        # The original UCI spreadsheet export writes US-style dates: 12/1/2010 8:26.
        us_style = pd.to_datetime(local, errors="coerce", format="%m/%d/%Y %H:%M")
        parsed = parsed.fillna(us_style)
    bad = parsed.isna()
    if bool(bad.any()):
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(
            f"unparsable timestamp {local.iloc[pos]!r}",
            file=file,
            row=pos + 1,
            column="InvoiceDate",
        )
    if parsed.dt.tz is not None:
        return parsed.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)
    # The shop trades in daytime, far from the 01:00-02:00 clock changes; an ambiguous
    # time, should one appear, is read as GMT and a skipped one is moved forward.
    zoned = parsed.dt.tz_localize(
        SOURCE_TZ, ambiguous=np.zeros(len(parsed), dtype=bool), nonexistent="shift_forward"
    )
    return zoned.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)


def _most_frequent(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Per key, the most frequent non-empty value (ties: alphabetically first)."""
    pairs = pd.DataFrame({"k": keys, "v": values}).dropna()
    pairs = pairs[pairs["v"] != ""]
    counts = pairs.groupby(["k", "v"]).size().rename("n").reset_index()
    counts = counts.sort_values(["k", "n", "v"], ascending=[True, False, True])
    return counts.drop_duplicates("k").set_index("k")["v"]


def convert_online_retail(raw: pd.DataFrame, *, source_path: str = "") -> ImportedData:
    """Convert an Online Retail table (UCI column names) into canonical tables.

    Parameters
    ----------
    raw:
        The source rows in their original order (the order fixes each line's ``event_id``).
    source_path:
        Named in error messages and in the report.

    Returns
    -------
    ImportedData
        Events (purchases and returns), items, users (``user_id``, ``country``) and a report
        with dropped rows by reason and the README reconciliation figures.

    Raises
    ------
    DataValidationError
        If a source column is missing, the table is empty, a date or number is unparsable.
    """
    file = source_path or "online_retail"
    for column in SOURCE_COLUMNS:
        if column not in raw.columns:
            raise DataValidationError(
                "missing source column in the header", file=file, column=column
            )
    if len(raw) == 0:
        raise DataValidationError("file has no data rows", file=file)
    df = raw.reset_index(drop=True)
    invoice = _text(df["InvoiceNo"])
    code = _text(df["StockCode"])
    description = _text(df["Description"])
    customer = _customers(df["CustomerID"], file)
    quantity = pd.to_numeric(df["Quantity"], errors="coerce")
    price = pd.to_numeric(df["UnitPrice"], errors="coerce").astype("float64")
    for name, values in (("Quantity", quantity), ("UnitPrice", price)):
        if bool(values.isna().any()):
            pos = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise DataValidationError(
                f"not a number: {df[name].iloc[pos]!r}", file=file, row=pos + 1, column=name
            )
    timestamp = _to_utc(df["InvoiceDate"], file)

    cancel = invoice.str.startswith("C")
    bad_debt = invoice.str.startswith("A")
    product = code.str.fullmatch(PRODUCT_CODE).fillna(False).astype(bool)
    # Position in the invoice over the untouched source, so ids do not move when rules change.
    line = invoice.groupby(invoice, sort=False).cumcount() + 1

    report = ImportReport(source="online-retail", source_path=source_path, source_rows=len(df))
    remaining = pd.Series(True, index=df.index)
    for reason, hit in (
        (REASON_BAD_DEBT, bad_debt),
        (REASON_NO_CUSTOMER, customer.isna()),
        (REASON_ADJUSTMENT, ~cancel & (quantity <= 0)),
        (REASON_PRICE, price <= 0),
        (REASON_NON_PRODUCT, ~product),
    ):
        mask = remaining & hit
        report.drop(reason, int(mask.sum()))
        remaining &= ~mask
    keep = remaining.to_numpy()

    kept_cancel = cancel[keep]
    events = pd.DataFrame(
        {
            "event_id": (invoice + "-" + line.astype("str"))[keep],
            "user_id": customer[keep],
            "item_id": code[keep],
            "event_type": np.where(kept_cancel, "return", "purchase"),
            "timestamp": timestamp[keep],
            "quantity": quantity[keep].abs().astype("int64"),
            "unit_price": price[keep],
            "session_id": invoice[keep],
            "channel": pd.Series(None, index=df.index[keep], dtype="str"),
            "region": _text(df["Country"])[keep],
        }
    ).astype(EVENT_DTYPES)
    # Stable on time keeps the source order, so invoice lines stay in line order.
    events = events.sort_values("timestamp", kind="stable")
    report.converted["cancellation line -> return event"] = int(kept_cancel.sum())

    # Prices and titles come from every sale line of a product, with or without a customer:
    # anonymous sales still tell what the shop charged (README caveats).
    sale = (product & ~cancel & ~bad_debt & (quantity > 0) & (price > 0)).to_numpy()
    item_ids = pd.Index(events["item_id"].unique())
    base = price[sale].groupby(code[sale]).median()
    fallback = events.groupby("item_id")["unit_price"].median()
    title = _most_frequent(code, description.where(description != "<NA>", None))
    titles = pd.Series(item_ids.map(title), index=item_ids, dtype="str")
    titles = titles.fillna(pd.Series(item_ids, index=item_ids, dtype="str"))
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": titles.to_numpy(),
            "category": categories_for(titles).to_numpy(),
            "brand": None,
            "base_price": pd.Series(item_ids.map(base), dtype="float64")
            .fillna(pd.Series(item_ids.map(fallback), dtype="float64"))
            .to_numpy(),
            "unit_cost": np.nan,
            "stock": pd.Series([pd.NA] * len(item_ids), dtype="Int64"),
        }
    ).astype(ITEM_DTYPES)

    country = _most_frequent(customer, _text(df["Country"]))
    users = pd.DataFrame({"user_id": pd.Index(events["user_id"].unique())})
    users["country"] = users["user_id"].map(country).astype("str")

    clean = (customer.notna() & ~cancel & ~bad_debt & (quantity > 0) & (price > 0)).to_numpy()
    purchases = events[events["event_type"] == "purchase"]
    report.reference = {
        "readme_clean_view": README_CLEAN_VIEW,
        "clean_view_measured": {
            "rows": int(clean.sum()),
            "customers": int(customer[clean].nunique()),
            "stock_codes": int(code[clean].nunique()),
            "invoices": int(invoice[clean].nunique()),
        },
        "non_product_lines_in_clean_view": int((clean & ~product.to_numpy()).sum()),
        "purchases_written": {
            "rows": len(purchases),
            "customers": int(purchases["user_id"].nunique()),
            "stock_codes": int(purchases["item_id"].nunique()),
            "invoices": int(purchases["session_id"].nunique()),
        },
    }
    report.notes = [
        "InvoiceDate is UK local time, converted to UTC",
        "category is derived from description keywords (retail/<group>), see docs/data.md",
        "base_price is the median UnitPrice of the item's sale lines, customer or not",
        "brand, unit_cost and stock are unknown in the source (null)",
        "duplicate source rows are kept, as in the source; their event_ids differ by line",
    ]
    src = Path(source_path).name if source_path else file
    return ImportedData(
        events=validate_events(events.reset_index(drop=True), file=f"{src} (converted events)"),
        items=validate_items(items, file=f"{src} (converted items)"),
        users=validate_users(users, file=f"{src} (converted users)"),
        report=report,
    )


def import_online_retail(src: Path | str, out_dir: Path | str) -> ImportReport:
    """Read the Online Retail Parquet or CSV file, convert it and write the canonical tables.

    Parameters
    ----------
    src:
        ``online_retail.parquet`` (or a CSV with the same columns).
    out_dir:
        Directory for ``events.parquet``, ``items.parquet``, ``users.parquet`` and
        ``import_report.json``.

    Returns
    -------
    ImportReport
        What was kept and dropped.
    """
    path = Path(src)
    data = convert_online_retail(read_raw(path), source_path=str(path))
    data.write(out_dir)
    return data.report
