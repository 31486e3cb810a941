"""The competitor-match policy: follow a competitor's public price."""

from __future__ import annotations

from typing import ClassVar

from fairshelf.errors import InvalidArgument
from pricing.context import ItemState, PublicContext
from pricing.policy import PricingPolicy, Proposal


class CompetitorMatchPolicy(PricingPolicy):
    """Matches (or undercuts) a competitor price supplied in the public context.

    Parameters
    ----------
    undercut_pct:
        Fraction below the competitor's price to propose (0 = match exactly).
    lower_only:
        When true, follow the competitor down but never up (stay at the base price when the
        competitor is dearer).
    """

    name: ClassVar[str] = "competitor_match"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = frozenset({"item_id", "base_price", "competitor_prices"})

    def __init__(self, undercut_pct: float = 0.0, lower_only: bool = False) -> None:
        if not 0.0 <= undercut_pct < 1.0:
            raise InvalidArgument(
                f"undercut_pct must be in [0, 1), got {undercut_pct}", field="undercut_pct"
            )
        self.undercut_pct = undercut_pct
        self.lower_only = lower_only

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        """Propose the competitor's price (less the undercut), or the base price without one."""
        theirs = ctx.competitor_prices.get(item.item_id)
        if theirs is None:
            return Proposal(item.base_price, ("NO_COMPETITOR_PRICE",))
        price = theirs * (1.0 - self.undercut_pct)
        if self.lower_only and price >= item.base_price:
            return Proposal(item.base_price, ("COMPETITOR_DEARER",))
        return Proposal(price, ("COMPETITOR_MATCH",))
