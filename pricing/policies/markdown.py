"""The markdown policy: clearance pricing from stock and days left."""

from __future__ import annotations

from typing import ClassVar

from pricing.context import ItemState, PublicContext
from pricing.optimizer import clearance_price
from pricing.policy import PricingPolicy, Proposal


class MarkdownPolicy(PricingPolicy):
    """Marks an item down just enough to sell its stock before its days run out.

    With the recent sales rate and the elasticity it solves for the highest price that sells
    ``stock`` units in ``days_left`` days (:func:`pricing.optimizer.clearance_price`). Without
    an elasticity it assumes ``fallback_elasticity``. It never proposes above the base price
    nor above the price in force, and holds the price when sales are on track.

    Parameters
    ----------
    fallback_elasticity:
        Elasticity used when the item has none (an ordinary, elastic good by default).
    """

    name: ClassVar[str] = "markdown"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = frozenset(
        {"base_price", "current_price", "stock", "days_left", "recent_demand", "elasticity"}
    )

    def __init__(self, fallback_elasticity: float = -2.0) -> None:
        self.fallback_elasticity = fallback_elasticity

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        """Propose the clearance price, or hold when stock or timing is unknown."""
        now = min(item.base_price, item.current_price or item.base_price)
        if item.stock is None or item.days_left is None or item.recent_demand is None:
            return Proposal(now, ("MARKDOWN_NO_CLEARANCE_DATA",))
        if item.stock <= 0:
            return Proposal(now, ("MARKDOWN_SOLD_OUT",))
        elasticity = item.elasticity if item.elasticity is not None else self.fallback_elasticity
        price = clearance_price(now, elasticity, item.stock, item.days_left, item.recent_demand)
        if price < now:
            return Proposal(price, ("MARKDOWN_CLEARANCE",))
        return Proposal(now, ("MARKDOWN_ON_TRACK",))
