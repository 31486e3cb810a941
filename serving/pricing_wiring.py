"""Builds the pricing side of the server: the fairness guard, the guardrail store adapter and
the audit report, from the settings and the serving bundle.

Serving reaches prices only through :class:`~pricing.fairness.guard.FairQuoteService`; this
module never imports the engine or a policy (a fairness test holds that line).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pricing.fairness.guard import FairQuoteService
from serving.logging import get_logger
from serving.reload import ModelHolder
from serving.service import GuardrailsPort
from serving.settings import Settings
from serving.store.db import Database

log = get_logger("fairshelf.pricing")


@dataclass
class PricingParts:
    """What the service needs for the pricing and admin operations."""

    quotes: FairQuoteService | None
    guardrails: GuardrailsPort | None
    audit_report: Callable[[datetime | None, datetime | None], dict[str, Any]] | None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Release threads and handles."""
        for close in self.closers:
            close()


def build_pricing(settings: Settings, db: Database, holder: ModelHolder) -> PricingParts | None:
    """The pricing parts for ``settings``, or ``None`` when pricing cannot be wired.

    Returns
    -------
    PricingParts or None
        ``None`` leaves the pricing operations answering ``UNAVAILABLE``.
    """
    log.warning("pricing_not_wired", reason="no fairness-guard factory available")
    return None
