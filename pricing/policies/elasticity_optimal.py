"""The elasticity-optimal policy: the revenue- or margin-maximising price."""

from __future__ import annotations

from typing import ClassVar

from pricing.context import ItemState, PublicContext
from pricing.optimizer import clearance_price, unconstrained_optimum
from pricing.policy import PricingPolicy, Proposal

_CODES: dict[tuple[str, str], tuple[str, str]] = {}


class ElasticityOptimalPolicy(PricingPolicy):
    """Maximises the guardrail's objective under the item's estimated constant elasticity.

    The proposal is the unconstrained optimum (possibly "as low/high as allowed"); the engine
    clamps it into the guardrail and 24 h change bands, which for these unimodal objectives is
    the constrained optimum (:mod:`pricing.optimizer`). Without an elasticity it holds the
    base price. ``sell_through`` uses the clearance price when stock data is present.
    """

    name: ClassVar[str] = "elasticity_optimal"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = frozenset(
        {
            "base_price",
            "unit_cost",
            "elasticity",
            "current_price",
            "stock",
            "days_left",
            "recent_demand",
        }
    )

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        """Propose the optimum for ``objective``."""
        e = item.elasticity
        if e is None:
            return Proposal(item.base_price, ("NO_ELASTICITY",))
        if objective == "sell_through":
            now = item.current_price or item.base_price
            if item.stock is not None and item.days_left is not None and item.recent_demand:
                price = clearance_price(now, e, item.stock, item.days_left, item.recent_demand)
                return Proposal(price, ("SELL_THROUGH",))
            return Proposal(now, ("SELL_THROUGH_NO_DATA",))
        price = unconstrained_optimum(objective, item.base_price, e, item.unit_cost)
        if objective == "margin" and item.unit_cost:
            code = "MARGIN_OPTIMUM" if e < -1 else "INELASTIC_RAISE"
        else:
            code = "ELASTIC_LOWER" if e < -1 else "INELASTIC_RAISE" if e > -1 else "UNIT_ELASTIC"
        codes = _CODES.get((objective, code))
        if codes is None:
            # Few (objective, code) pairs: one shared tuple each instead of a new string and
            # tuple per proposal.
            codes = _CODES[(objective, code)] = (f"{objective.upper()}_OPTIMUM", code)
        return Proposal(price, codes)
