"""Writing what the guard caught to the audit log and the violations metric."""

from __future__ import annotations

from collections.abc import Sequence

from pricing.fairness.metrics import record_violation
from pricing.fairness.ports import AuditSink
from pricing.fairness.quotes import Quote
from pricing.fairness.shopper import ShopperGroup
from pricing.fairness.steering import SteeringFinding


def record_g2_violation(
    audit: AuditSink, quote: Quote, got: float | None, reason: str, group: ShopperGroup
) -> None:
    """Audit and count a shopper-dependent price the guard blocked (rule G2).

    Parameters
    ----------
    audit:
        The audit log.
    quote:
        The quote as served (with the fair price).
    got:
        What the policy proposed with the shopper in scope (None if it failed).
    reason:
        Why the two runs differ.
    group:
        The shopper's audit group (never the shopper id).
    """
    policy = f"{quote.policy_name}@{quote.policy_version}"
    record_violation("G2", policy)
    audit.append(
        "g2_violation",
        {
            "rule": "G2",
            "quote_id": quote.quote_id,
            "item_id": quote.item_id,
            "epoch": quote.epoch,
            "context_key": quote.context_key,
            "policy": policy,
            "fair_price": quote.list_price,
            "blocked_price": got,
            "group": {"tenure": group.tenure, "frequency": group.frequency, "device": group.device},
            "message": (
                f"{reason}: with the shopper in scope policy {policy} proposed "
                f"{got if got is not None else 'nothing'} for {quote.item_id!r}, without the "
                f"shopper it priced {quote.list_price}; served {quote.list_price} (rule G2)"
            ),
        },
    )


def record_quarantine(audit: AuditSink, quote: Quote) -> None:
    """Audit that a policy caught by rule G2 is no longer trusted."""
    policy = f"{quote.policy_name}@{quote.policy_version}"
    audit.append(
        "policy_quarantined",
        {
            "rule": "G2",
            "policy": policy,
            "quote_id": quote.quote_id,
            "message": (
                f"policy {policy} priced by shopper; from the next price computation on, its "
                "items are served at their base price until a new policy version is loaded "
                "(rule G2)"
            ),
        },
    )


def record_refused_line(audit: AuditSink, quote: Quote, program_id: str, amount: float) -> None:
    """Audit and count a program line dropped because it would not lower the price (rule G4)."""
    record_violation("G4", program_id)
    audit.append(
        "g4_program_refused",
        {
            "rule": "G4",
            "quote_id": quote.quote_id,
            "item_id": quote.item_id,
            "program_id": program_id,
            "attempted_amount": amount,
            "message": (
                f"program {program_id!r} would have changed the price of {quote.item_id!r} by "
                f"{-amount:+.2f}; programs may only lower a price, line dropped (rule G4)"
            ),
        },
    )


STEERING_KINDS = {"G4-steering": "context_steering", "G4-hopping": "region_hopping"}


def record_steering_findings(audit: AuditSink, findings: Sequence[SteeringFinding]) -> int:
    """Audit and count the steering and hopping findings not recorded before.

    The audits run over the whole quote log each time a report is made, so a finding already
    in the audit log (same rule and key: the day, or the day and shopper pseudonym) is not
    appended or counted again.

    Returns
    -------
    int
        Findings newly recorded.
    """
    if not findings:
        return 0
    kinds = set(STEERING_KINDS.values())
    seen = {
        (r.payload.get("rule"), r.payload.get("key")) for r in audit.records() if r.kind in kinds
    }
    added = 0
    for f in findings:
        if (f.rule, f.key) in seen:
            continue
        seen.add((f.rule, f.key))
        # The storefront chose the context; no policy is to blame.
        record_violation(f.rule, "storefront")
        audit.append(
            STEERING_KINDS[f.rule],
            {"rule": f.rule, "key": f.key, "examples": list(f.examples), "message": f.message},
        )
        added += 1
    return added
