"""The static policy: the item's base price, unchanged."""

from __future__ import annotations

from typing import ClassVar

from pricing.context import ItemState, PublicContext
from pricing.policy import PricingPolicy, Proposal


class StaticPolicy(PricingPolicy):
    """Always proposes the base price (the control arm of price experiments)."""

    name: ClassVar[str] = "static"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = frozenset({"base_price"})

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        """Return the base price."""
        return Proposal(item.base_price, ("BASE_PRICE",))
