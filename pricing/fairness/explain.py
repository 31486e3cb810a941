"""Rule G6: say which inputs, policy, guardrail and discount programs produced a price."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pricing.fairness.programs import DiscountLine, ProgramBook
from pricing.fairness.quotes import GUARD_BLOCKED, Quote


@dataclass(frozen=True)
class Explanation:
    """Why a quote has the price it has.

    Parameters
    ----------
    quote:
        The quote as served and logged.
    inputs:
        The public inputs the policy declared (rule G1).
    policy:
        ``name@version`` of the pricing policy.
    guardrail:
        ``scope@version`` of the guardrail that bounded the price.
    programs:
        The published discount programs applied, one line each, with their public text.
    summary:
        The explanation in plain words, for the shopper or a regulator.
    """

    quote: Quote
    inputs: tuple[str, ...]
    policy: str
    guardrail: str
    programs: tuple[DiscountLine, ...]
    summary: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the HTTP body of ``GET /v1/prices/quotes/{id}``)."""
        return {
            "quote": self.quote.to_json(),
            "inputs": list(self.inputs),
            "policy": self.policy,
            "guardrail": self.guardrail,
            "programs": [line.to_json() for line in self.programs],
            "summary": self.summary,
        }


def explain_quote(quote: Quote, programs: ProgramBook | None = None) -> Explanation:
    """Build the explanation of ``quote``.

    Parameters
    ----------
    quote:
        A logged quote.
    programs:
        The current program book; used to note programs withdrawn since the quote.

    Returns
    -------
    Explanation
        The facts and a plain-words summary.
    """
    policy = f"{quote.policy_name}@{quote.policy_version}"
    guardrail = f"{quote.guardrail_scope}@{quote.guardrail_version}"
    inputs = ", ".join(quote.inputs) or "none"
    parts = [
        f"Item {quote.item_id} was priced at {quote.list_price:.2f} in price epoch {quote.epoch} "
        f"by pricing policy {policy}, from public inputs only: {inputs}.",
        f"The price was bounded by guardrail {guardrail}; base price {quote.base_price:.2f}, "
        f"adjustment {quote.adjustment:+.2f}"
        + (f" ({', '.join(quote.reason_codes)})." if quote.reason_codes else "."),
        "Every shopper asking for this item in this epoch and public context is quoted the same "
        "list price; nothing about the shopper was used.",
    ]
    if quote.guard_status == GUARD_BLOCKED:
        parts.append(
            "The fairness guard found that the pricing engine gave a different price when the "
            "shopper was in scope; that price was blocked and the shopper-free price served."
        )
    for line in quote.discount_lines:
        note = ""
        if programs is not None and programs.get(line.program_id) is None:
            note = " (program since withdrawn)"
        parts.append(
            f"Published program {line.title!r}{note} took off {line.amount:.2f}: {line.public_text}"
        )
    parts.append(f"Final price: {quote.final_price:.2f}.")
    return Explanation(
        quote=quote,
        inputs=quote.inputs,
        policy=policy,
        guardrail=guardrail,
        programs=quote.discount_lines,
        summary=" ".join(parts),
    )
