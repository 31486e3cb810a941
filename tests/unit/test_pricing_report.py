"""Tests of pricing.report: zero-sale periods, quantity caps and the category table."""

from __future__ import annotations

import pandas as pd

from pricing.report import capped_purchases, fill_zero_sale_periods


def test_gaps_between_first_and_last_sale_become_zero_sales_at_the_last_price() -> None:
    obs = pd.DataFrame(
        {
            "item_id": ["A", "A", "B"],
            "category": ["c", "c", "c"],
            "period": [1, 4, 2],
            "price": [5.0, 6.0, 9.0],
            "units": [3.0, 1.0, 2.0],
        }
    )
    full = fill_zero_sale_periods(obs)
    a = full[full["item_id"] == "A"]
    assert a["period"].tolist() == [1, 2, 4]  # only periods seen in the log (3 never was)
    assert a["units"].tolist() == [3.0, 0.0, 1.0]
    assert a["price"].tolist() == [5.0, 5.0, 6.0]
    # B sold once: nothing before or after its sale is invented.
    assert full[full["item_id"] == "B"]["units"].tolist() == [2.0]


def test_bulk_lines_are_capped_at_the_items_own_quantile() -> None:
    ts = pd.Timestamp("2026-01-01", tz="UTC")
    events = pd.DataFrame(
        {
            "item_id": ["A"] * 100,
            "event_type": ["purchase"] * 99 + ["view"],
            "timestamp": [ts] * 100,
            "quantity": [2] * 98 + [80000, 1],
            "unit_price": [1.0] * 100,
        }
    )
    capped = capped_purchases(events, quantile=0.98)
    assert len(capped) == 99 and capped["quantity"].max() == 2
