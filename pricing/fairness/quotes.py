"""What the guard hands out and logs: a :class:`Quote` per item.

The same record is returned to the serving layer and written to the quote log, so that an
explanation (rule G6) and the consistency audits (rules G3, G4) read exactly what the shopper
was shown. The log keeps coarse shopper groups (tenure band, order-frequency band, device
class) and never a shopper id: the audits need groups, not people.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from pricing.context import PublicContext
from pricing.fairness.programs import DiscountLine
from pricing.fairness.shopper import ShopperGroup

GUARD_OK: Final[str] = "ok"
GUARD_BLOCKED: Final[str] = "blocked"
GUARD_QUARANTINED: Final[str] = "quarantined"


def context_key_text(ctx: PublicContext) -> str:
    """``ctx.key()`` as compact JSON: the public-context column of the quote log."""
    return json.dumps(ctx.key(), separators=(",", ":"))


class Quote(NamedTuple):
    """One price quote, as served and as logged (immutable).

    A named tuple rather than a frozen dataclass: one is built per quoted item on the hot
    path, and a named tuple is built several times faster.

    Parameters
    ----------
    quote_id:
        Unique id, returned to the storefront and accepted by ExplainQuote.
    item_id:
        The item.
    epoch:
        Price epoch: every shopper sees the same list price within it (rule G3).
    context_key:
        The public context (region, competitor prices, promotions) as JSON.
    quoted_at:
        ISO-8601 UTC time of the quote.
    list_price:
        The shopper-free fair price (after guardrails), the same for everyone.
    final_price:
        ``list_price`` minus the discount lines.
    base_price, adjustment, reason_codes:
        From the pricing engine's decision.
    policy_name, policy_version, inputs:
        The policy that proposed the price and the public inputs it declared (rule G1).
    guardrail_scope, guardrail_version:
        The guardrail that bounded it.
    discount_lines:
        Published programs applied, each on its own line (rule G4).
    group:
        The shopper's audit group.
    guard_status:
        ``"ok"``; ``"blocked"`` when the shopper-scoped price differed and was not served;
        ``"quarantined"`` when the policy was caught earlier and the base price was served.
    blocked_price:
        The price that was blocked, if any (kept for the audit, never served).
    shopper_ref:
        A day-scoped keyed pseudonym of the shopper ("" when anonymous), so the audit can
        see one shopper quoted under several regions in a day; never an id, and kept out of
        :meth:`to_json` (the storefront and explanations do not need it).
    """

    quote_id: str
    item_id: str
    epoch: int
    context_key: str
    quoted_at: str
    list_price: float
    final_price: float
    base_price: float
    adjustment: float
    reason_codes: tuple[str, ...]
    policy_name: str
    policy_version: str
    inputs: tuple[str, ...]
    guardrail_scope: str
    guardrail_version: str
    discount_lines: tuple[DiscountLine, ...]
    group: ShopperGroup
    guard_status: str = GUARD_OK
    blocked_price: float | None = None
    shopper_ref: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the quote-log row and the HTTP body share it)."""
        return {
            "quote_id": self.quote_id,
            "item_id": self.item_id,
            "epoch": self.epoch,
            "context_key": self.context_key,
            "quoted_at": self.quoted_at,
            "list_price": self.list_price,
            "final_price": self.final_price,
            "base_price": self.base_price,
            "adjustment": self.adjustment,
            "reason_codes": list(self.reason_codes),
            "policy_name": self.policy_name,
            "policy_version": self.policy_version,
            "inputs": list(self.inputs),
            "guardrail_scope": self.guardrail_scope,
            "guardrail_version": self.guardrail_version,
            "discount_lines": [line.to_json() for line in self.discount_lines],
            "group": {
                "tenure": self.group.tenure,
                "frequency": self.group.frequency,
                "device": self.group.device,
            },
            "guard_status": self.guard_status,
            "blocked_price": self.blocked_price,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Quote:
        """Inverse of :meth:`to_json`."""
        group = data["group"]
        blocked = data.get("blocked_price")
        return cls(
            quote_id=str(data["quote_id"]),
            item_id=str(data["item_id"]),
            epoch=int(data["epoch"]),
            context_key=str(data["context_key"]),
            quoted_at=str(data["quoted_at"]),
            list_price=float(data["list_price"]),
            final_price=float(data["final_price"]),
            base_price=float(data["base_price"]),
            adjustment=float(data["adjustment"]),
            reason_codes=tuple(data["reason_codes"]),
            policy_name=str(data["policy_name"]),
            policy_version=str(data["policy_version"]),
            inputs=tuple(data["inputs"]),
            guardrail_scope=str(data["guardrail_scope"]),
            guardrail_version=str(data["guardrail_version"]),
            discount_lines=tuple(DiscountLine.from_json(d) for d in data["discount_lines"]),
            group=ShopperGroup(str(group["tenure"]), str(group["frequency"]), str(group["device"])),
            guard_status=str(data.get("guard_status", GUARD_OK)),
            blocked_price=None if blocked is None else float(blocked),
        )
