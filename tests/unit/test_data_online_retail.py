"""Tests for training.data.adapters.online_retail on a hand-built table shaped like the source."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fairshelf.errors import DataValidationError
from training.data.adapters.online_retail import (
    REASON_ADJUSTMENT,
    REASON_BAD_DEBT,
    REASON_NO_CUSTOMER,
    REASON_NON_PRODUCT,
    REASON_PRICE,
    convert_online_retail,
    import_online_retail,
)
from training.data.adapters.retail_categories import OTHER, category_for
from training.data.readers import read_dataset

UK = "United Kingdom"
HOLDER = "WHITE HANGING HEART T-LIGHT HOLDER"
CAKESTAND = "REGENCY CAKESTAND 3 TIER"
ROWS = [
    # InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country
    ("536365", "85123A", f" {HOLDER}", 6, "2010-12-01 08:26:00", 2.55, 17850, UK),
    ("536365", "71053", "WHITE METAL LANTERN", 6, "2010-12-01 08:26:00", 3.39, 17850, UK),
    ("536365", "POST", "POSTAGE", 1, "2010-12-01 08:26:00", 18.0, 17850, UK),
    ("536366", "85123A", HOLDER, 10, "2011-06-01 10:00:00", 2.95, None, UK),
    ("C536367", "85123A", HOLDER, -2, "2011-06-02 11:00:00", 2.55, 17850, UK),
    ("536368", "22423", "damaged", -5, "2011-06-03 09:00:00", 0.0, 13047, "France"),
    ("536369", "22423", CAKESTAND, 1, "2011-06-03 09:30:00", 0.0, 13047, "France"),
    ("A563185", "B", "Adjust bad debt", 1, "2011-08-12 14:50:00", -11062.06, None, UK),
    ("536370", "22423", CAKESTAND, 2, "2011-07-01 12:00:00", 12.75, 13047, "France"),
    ("536370", "22423", CAKESTAND, 2, "2011-07-01 12:00:00", 12.75, 13047, "France"),
]  # fmt: skip


def _source() -> pd.DataFrame:
    columns = [
        "InvoiceNo",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "UnitPrice",
        "CustomerID",
        "Country",
    ]
    df = pd.DataFrame(ROWS, columns=columns)
    # The dtypes pandas gives the shared Parquet file with dtype_backend="numpy_nullable".
    return df.astype(
        {
            "InvoiceNo": "string",
            "StockCode": "string",
            "Description": "string",
            "Quantity": "Int32",
            "InvoiceDate": "datetime64[ms]",
            "UnitPrice": "Float64",
            "CustomerID": "Int32",
            "Country": "string",
        }
    )


def test_events_and_drop_reasons() -> None:
    data = convert_online_retail(_source(), source_path="tiny.parquet")
    ev = data.events
    assert ev["event_id"].tolist() == ["536365-1", "536365-2", "C536367-1", "536370-1", "536370-2"]
    assert ev["event_type"].tolist() == ["purchase", "purchase", "return", "purchase", "purchase"]
    assert ev["quantity"].tolist() == [6, 6, 2, 2, 2]
    assert ev["user_id"].tolist() == ["17850", "17850", "17850", "13047", "13047"]
    assert ev["session_id"].tolist() == ["536365", "536365", "C536367", "536370", "536370"]
    assert ev["unit_price"].tolist() == [2.55, 3.39, 2.55, 12.75, 12.75]
    assert data.report.dropped == {
        REASON_BAD_DEBT: 1,
        REASON_NO_CUSTOMER: 1,
        REASON_ADJUSTMENT: 1,
        REASON_PRICE: 1,
        REASON_NON_PRODUCT: 1,
    }
    assert data.report.converted == {"cancellation line -> return event": 1}
    assert sum(data.report.dropped.values()) + len(ev) == len(ROWS)


def test_uk_local_time_becomes_utc() -> None:
    ev = convert_online_retail(_source()).events.set_index("event_id")
    # December is GMT (UTC+0); June is BST (UTC+1).
    assert ev.loc["536365-1", "timestamp"] == pd.Timestamp("2010-12-01 08:26", tz="UTC")
    assert ev.loc["C536367-1", "timestamp"] == pd.Timestamp("2011-06-02 10:00", tz="UTC")


def test_items_and_users() -> None:
    data = convert_online_retail(_source())
    items = data.items.set_index("item_id")
    assert sorted(items.index) == ["22423", "71053", "85123A"]
    # Median over sale lines with or without a customer: 2.55 and 2.95.
    assert items.loc["85123A", "base_price"] == pytest.approx(2.75)
    # The zero-price line does not count toward the price.
    assert items.loc["22423", "base_price"] == pytest.approx(12.75)
    assert items.loc["85123A", "title"] == HOLDER
    assert items.loc["22423", "title"] == CAKESTAND
    assert items.loc["85123A", "category"] == "retail/lighting"
    assert items["stock"].isna().all() and items["unit_cost"].isna().all()
    assert data.users is not None
    users = data.users.set_index("user_id")
    assert users.loc["13047", "country"] == "France"


def test_reconciliation_figures() -> None:
    ref = convert_online_retail(_source()).report.reference
    assert ref["clean_view_measured"] == {
        "rows": 5,
        "customers": 2,
        "stock_codes": 4,
        "invoices": 2,
    }
    assert ref["non_product_lines_in_clean_view"] == 1
    assert ref["purchases_written"]["rows"] == 4
    assert ref["readme_clean_view"]["rows"] == 397_884


def test_missing_source_column_is_named() -> None:
    with pytest.raises(DataValidationError, match="'CustomerID'") as info:
        convert_online_retail(_source().drop(columns="CustomerID"), source_path="x.parquet")
    assert "x.parquet" in str(info.value)


def test_unparsable_date_is_named() -> None:
    src = _source().astype({"InvoiceDate": "string"})
    src.loc[3, "InvoiceDate"] = "31/31/2011"
    with pytest.raises(DataValidationError, match="unparsable timestamp") as info:
        convert_online_retail(src, source_path="x.csv")
    assert info.value.row == 4 and info.value.column == "InvoiceDate"


def test_original_uci_date_format_is_read() -> None:
    src = _source().astype({"InvoiceDate": "string"})
    src["InvoiceDate"] = "12/1/2010 8:26"
    src.loc[4, "InvoiceDate"] = "6/2/2011 11:00"
    ev = convert_online_retail(src).events.set_index("event_id")
    assert ev.loc["536365-1", "timestamp"] == pd.Timestamp("2010-12-01 08:26", tz="UTC")
    assert ev.loc["C536367-1", "timestamp"] == pd.Timestamp("2011-06-02 10:00", tz="UTC")


def test_import_writes_canonical_files(tmp_path: Path) -> None:
    src = tmp_path / "online_retail.parquet"
    _source().to_parquet(src, index=False)
    report = import_online_retail(src, tmp_path / "out")
    events, items, users = read_dataset(tmp_path / "out")
    assert len(events) == report.events == 5
    assert items is not None and users is not None
    assert (tmp_path / "out" / "import_report.json").is_file()


@pytest.mark.parametrize(
    ("description", "category"),
    [
        ("JUMBO BAG RED RETROSPOT", "retail/bags"),
        ("SET OF 3 CAKE TINS PANTRY DESIGN", "retail/kitchen"),
        ("PAPER CHAIN KIT 50'S CHRISTMAS", "retail/christmas"),
        ("ASSORTED COLOUR BIRD ORNAMENT", "retail/garden"),
        ("MEDIUM CERAMIC TOP STORAGE JAR", "retail/kitchen"),
        ("PARTY BUNTING", "retail/decoration"),
        ("GIN + TONIC DIET METAL SIGN", "retail/home"),
        ("RABBIT NIGHT LIGHT", "retail/lighting"),
        ("SPOTTY PINK", OTHER),
        (None, OTHER),
    ],
)
def test_category_keywords(description: str | None, category: str) -> None:
    assert category_for(description) == category


def test_long_invoices_keep_their_line_order() -> None:
    lines = [
        ("540000", f"{21000 + k}", f"ITEM {k}", 1, "2011-01-05 10:00:00", 1.0 + k, 12345, UK)
        for k in range(12)
    ]
    src = pd.DataFrame(lines, columns=_source().columns).astype(_source().dtypes.to_dict())
    ev = convert_online_retail(src).events
    assert ev["event_id"].tolist() == [f"540000-{k}" for k in range(1, 13)]
