"""The canonical data contract (SPEC §3): column names, event types and their order of intent.

Every reader, adapter, the generator, the trainer and the event API speak these names.
"""

from __future__ import annotations

from typing import Final

# In order of increasing intent; "return" undoes a purchase.
EVENT_TYPES: Final[tuple[str, ...]] = (
    "impression",
    "view",
    "click",
    "add_to_cart",
    "purchase",
    "return",
)

# Column -> required?  Optional columns may be absent from a file; readers add them as null.
EVENT_COLUMNS: Final[dict[str, bool]] = {
    "event_id": False,
    "user_id": True,
    "item_id": True,
    "event_type": True,
    "timestamp": True,
    "quantity": False,
    "unit_price": True,
    "session_id": False,
    "channel": False,
    "region": False,
}

ITEM_COLUMNS: Final[dict[str, bool]] = {
    "item_id": True,
    "title": True,
    "category": True,
    "brand": False,
    "base_price": True,
    "unit_cost": False,
    "stock": False,
}

USER_COLUMNS: Final[dict[str, bool]] = {"user_id": True}

# Category paths use this separator, e.g. "home/kitchen/mugs".
CATEGORY_SEPARATOR: Final[str] = "/"
