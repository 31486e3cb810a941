"""Audit events of the recommendation side: a shopper switching personalization off or on.

PIPL art. 24, E-Commerce Law art. 18 and art. 17 of the 2022 algorithmic recommendation
provisions give the shopper a non-personalized option; the audit log proves when each choice
was recorded. The shopper is named by a keyed pseudonym (HMAC-SHA256), not by id, so the
append-only log holds no direct identifier.
"""

from __future__ import annotations

import hashlib
import hmac

from fairshelf.errors import InvalidArgument
from pricing.fairness.audit_chain import AuditRecord
from pricing.fairness.ports import AuditSink

OPTOUT_KIND = "optout_changed"


def pseudonym(shopper_id: str, key: bytes) -> str:
    """Keyed pseudonym of a shopper id (hex, 32 characters)."""
    return hmac.new(key, shopper_id.encode(), hashlib.sha256).hexdigest()[:32]


def audit_optout_change(
    audit: AuditSink,
    *,
    shopper_id: str,
    personalized: bool,
    source: str,
    pseudonym_key: bytes,
) -> AuditRecord:
    """Record that a shopper's personalization choice changed.

    Parameters
    ----------
    audit:
        The audit log.
    shopper_id:
        The shopper (stored only as a keyed pseudonym).
    personalized:
        The new choice: False means non-personalized recommendations from now on.
    source:
        Where the change came from (``"api"``, ``"support"``, ...).
    pseudonym_key:
        Secret key of the pseudonym (from settings), at least 16 bytes.

    Returns
    -------
    AuditRecord
        The chained record.

    Raises
    ------
    InvalidArgument
        Empty shopper id or a short key.
    """
    if not shopper_id:
        raise InvalidArgument("shopper_id must not be empty", field="shopper_id")
    if len(pseudonym_key) < 16:
        raise InvalidArgument("pseudonym_key must be at least 16 bytes", field="pseudonym_key")
    return audit.append(
        OPTOUT_KIND,
        {
            "shopper_ref": pseudonym(shopper_id, pseudonym_key),
            "personalized": bool(personalized),
            "source": source,
            "message": (
                "shopper switched personalized recommendations "
                + ("on" if personalized else "off (non-personalized option in force)")
            ),
        },
    )
