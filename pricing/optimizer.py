"""Price optimisation under constant-elasticity demand.

With demand ``q(p) = q0 * (p / p0) ** e`` every objective here is unimodal in the price, so the
best price inside a band ``[lower, upper]`` is the unconstrained optimum clamped to the band.
That is what lets a policy propose without knowing the guardrails: the engine's clamp to the
guardrail band (and to the 24 h change band) yields the constrained optimum.

- revenue ``p * q(p)`` is proportional to ``p ** (1 + e)``: it falls with the price when demand
  is elastic (``e < -1``) and rises when inelastic, so its optimum is a band edge;
- margin ``(p - c) * q(p)`` peaks at the Lerner price ``c * e / (1 + e)`` when ``e < -1``
  and rises without bound otherwise;
- sell-through (clearance) is the highest price that still sells the remaining stock in the
  days left, found from the elasticity and the recent sales rate.
"""

from __future__ import annotations

import math
from typing import Final

from fairshelf.errors import InvalidArgument

# A proposal this far from the base price means "as far as the guardrails allow".
REACH: Final[float] = 100.0


def unconstrained_optimum(
    objective: str, base_price: float, elasticity: float, unit_cost: float | None
) -> float:
    """The price maximising ``objective`` with no bounds (``base_price * REACH**±1`` for an edge).

    Parameters
    ----------
    objective:
        ``revenue`` or ``margin`` (``sell_through`` is :func:`clearance_price`).
    base_price:
        Reference price ``p0`` (> 0).
    elasticity:
        Price elasticity ``e`` of demand.
    unit_cost:
        Unit cost (margin only; without it margin falls back to revenue).

    Raises
    ------
    InvalidArgument
        Unknown objective.
    """
    low, high = base_price / REACH, base_price * REACH
    if objective == "margin" and unit_cost is not None and unit_cost > 0:
        if elasticity < -1.0:
            return min(max(unit_cost * elasticity / (1.0 + elasticity), low), high)
        return high
    if objective in ("revenue", "margin"):
        if elasticity < -1.0:
            return low
        if elasticity > -1.0:
            return high
        return base_price
    if objective == "sell_through":
        return low
    raise InvalidArgument(f"unknown objective {objective!r}", field="objective")


def clearance_price(
    price_now: float,
    elasticity: float,
    stock: float,
    days_left: float,
    recent_demand: float,
) -> float:
    """The highest price expected to sell ``stock`` units within ``days_left`` days.

    ``recent_demand`` is the sales rate (units/day) observed at ``price_now``; constant
    elasticity scales it to any other price. The price never rises above ``price_now``:
    clearance only marks down.
    """
    if days_left <= 0 or stock <= 0:
        return price_now
    need = stock / days_left
    if recent_demand >= need or elasticity >= 0:
        return price_now
    rate = max(recent_demand, 1e-3)
    return price_now * (need / rate) ** (1.0 / elasticity)


def best_price_in_band(
    objective: str,
    base_price: float,
    elasticity: float,
    unit_cost: float | None,
    lower: float,
    upper: float,
) -> float:
    """The optimum of ``objective`` within ``[lower, upper]`` (see the module docstring)."""
    if not lower <= upper:
        raise InvalidArgument(f"empty band [{lower}, {upper}]", field="lower")
    p = unconstrained_optimum(objective, base_price, elasticity, unit_cost)
    return min(max(p, lower), upper if math.isfinite(upper) else p)
