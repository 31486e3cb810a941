"""Audit events for changes that shape prices: guardrail edits and refused policies.

Guardrail changes are versioned by the guardrail store; recording them in the hash-chained log
as well (who, when, why, what) lets a regulator see them next to the guard's interventions,
with the same tamper evidence. A policy refused by rule G1 is recorded with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fairshelf.errors import InvalidArgument
from pricing.fairness.audit_chain import AuditRecord
from pricing.fairness.ports import AuditSink

GUARDRAIL_KIND = "guardrail_changed"
POLICY_REJECTED_KIND = "policy_rejected"


def audit_guardrail_change(
    audit: AuditSink,
    *,
    actor: str,
    reason: str,
    scope: str,
    version: int,
    changes: Sequence[Mapping[str, Any]],
) -> AuditRecord:
    """Record a guardrail change.

    Parameters
    ----------
    audit:
        The audit log.
    actor:
        Who made it (the API key's role and name, never the key).
    reason:
        Why, as given by the pricing team.
    scope:
        The guardrail scope (``global``, ``category:...``, ``item:...``).
    version:
        The new guardrail-set version.
    changes:
        Field-level differences (JSON-serialisable).

    Raises
    ------
    InvalidArgument
        Missing actor or reason.
    """
    return _append_change(
        audit,
        GUARDRAIL_KIND,
        "guardrail",
        actor,
        reason,
        {"scope": scope, "version": int(version), "changes": [dict(c) for c in changes]},
    )


def audit_policy_rejected(audit: AuditSink, *, policy: str, message: str) -> AuditRecord:
    """Record that a pricing policy was refused at load (rule G1)."""
    return audit.append(POLICY_REJECTED_KIND, {"rule": "G1", "policy": policy, "message": message})


PROMOTION_KIND = "promotion_changed"


def audit_promotion_change(
    audit: AuditSink,
    *,
    actor: str,
    reason: str,
    action: str,
    version: int,
    promotion: Mapping[str, Any],
) -> AuditRecord:
    """Record a promotion published or ended (a public fact every quote in its window carries).

    Parameters
    ----------
    audit:
        The audit log.
    actor:
        Who made the change (the API key's role, never the key).
    reason:
        Why, as given by the pricing team.
    action:
        ``"publish"`` or ``"end"``.
    version:
        The new version of the promotion store.
    promotion:
        The promotion as it now stands (name, public text, window).

    Raises
    ------
    InvalidArgument
        Missing actor or reason.
    """
    return _append_change(
        audit,
        PROMOTION_KIND,
        "promotion",
        actor,
        reason,
        {"action": action, "version": int(version), "promotion": dict(promotion)},
    )


def _append_change(
    audit: AuditSink, kind: str, subject: str, actor: str, reason: str, fields: dict[str, Any]
) -> AuditRecord:
    """Append a change record: who and why first (both required), then what changed."""
    _require_who_and_why(subject, actor, reason)
    return audit.append(kind, {"actor": actor, "reason": reason, **fields})


def _require_who_and_why(what: str, actor: str, reason: str) -> None:
    if not actor.strip():
        raise InvalidArgument(f"a {what} change needs an actor", field="actor")
    if not reason.strip():
        raise InvalidArgument(f"a {what} change needs a reason", field="reason")
