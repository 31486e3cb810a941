"""The vocabulary of pricing inputs, and rule G1: a policy may declare public inputs only.

A policy lists the names it reads in ``inputs``. Names are the fields of
:class:`pricing.context.ItemState` and :class:`pricing.context.PublicContext`. Any shopper-level
name, or any name this module does not know (it could hide one), refuses the policy at load.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from fairshelf.errors import PolicyRejected

PUBLIC_INPUTS: Final[frozenset[str]] = frozenset(
    {
        # item state
        "item_id",
        "category",
        "base_price",
        "unit_cost",
        "stock",
        "days_left",
        "elasticity",
        "elasticity_stderr",
        "current_price",
        "recent_demand",
        # public context
        "at",
        "region",
        "competitor_prices",
        "promotions",
    }
)

# Known shopper-level inputs, named in the refusal so the pricing team sees why.
SHOPPER_INPUTS: Final[frozenset[str]] = frozenset(
    {
        "user_id",
        "shopper_id",
        "customer_id",
        "session_id",
        "history",
        "purchase_history",
        "browsing_history",
        "segment",
        "loyalty",
        "tenure",
        "membership_tier",
        "device",
        "os",
        "user_agent",
        "ip",
        "ip_address",
        "location",
        "precise_location",
        "gps",
        "postcode",
        "zip_code",
        "willingness_to_pay",
        "predicted_wtp",
        "price_sensitivity",
        "user_vector",
        "user_embedding",
        "age",
        "gender",
        "income",
    }
)


def check_policy_inputs(policy_name: str, inputs: Iterable[str]) -> frozenset[str]:
    """Refuse a policy whose declared inputs are not all public (rule G1).

    Parameters
    ----------
    policy_name:
        Name used in the error message.
    inputs:
        The names the policy declares.

    Returns
    -------
    frozenset[str]
        The declared inputs, once accepted.

    Raises
    ------
    PolicyRejected
        Naming every shopper-level or unknown input.
    """
    declared = frozenset(inputs)
    shopper = sorted(declared & SHOPPER_INPUTS)
    unknown = sorted(declared - PUBLIC_INPUTS - SHOPPER_INPUTS)
    if shopper:
        raise PolicyRejected(
            f"policy {policy_name!r} declares shopper-level input(s) {shopper}: a price may "
            "depend on the item and public context only (rule G1)",
            field="inputs",
        )
    if unknown:
        raise PolicyRejected(
            f"policy {policy_name!r} declares unknown input(s) {unknown}; allowed inputs are "
            f"{sorted(PUBLIC_INPUTS)} (rule G1)",
            field="inputs",
        )
    return declared
