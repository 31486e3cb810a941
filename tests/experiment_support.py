"""Helpers for the experiment tests: events of exposed shoppers as the HTTP API takes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def event(i: int, user: str, item: str, kind: str, price: float, at: datetime) -> dict[str, Any]:
    """One event body for ``POST /v1/events`` (its id unique per shopper, kind and ``i``)."""
    return {
        "event_id": f"{user}-{kind}-{i}",
        "user_id": user,
        "item_id": item,
        "event_type": kind,
        "unit_price": price,
        "timestamp": at.isoformat(),
    }
