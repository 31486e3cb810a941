"""The console's navigation: one entry per page, shown to the roles that may call its operation.

A new page (promotions, experiment readouts, ...) is a router module of its own under
``serving/console/`` plus one :class:`NavEntry` here; the layout draws the menu from
:data:`NAV` and hides entries the signed-in role may not call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from serving.auth import OPERATIONS
from serving.settings import Role


@dataclass(frozen=True)
class NavEntry:
    """One menu entry.

    Parameters
    ----------
    key:
        Marks the entry as current on its pages (templates pass it as ``active``).
    title:
        The link text.
    path:
        Where it points, under ``/console``.
    operation:
        The API operation whose roles may see the page (``serving.auth.OPERATIONS``).
    """

    key: str
    title: str
    path: str
    operation: str

    def visible_to(self, role: Role) -> bool:
        """Whether ``role`` may open the page."""
        return role is Role.ADMIN or role in OPERATIONS.get(self.operation, frozenset())


NAV: Final[tuple[NavEntry, ...]] = (
    NavEntry("overview", "Overview", "/console", "GetConsoleOverview"),
    NavEntry("guardrails", "Guardrails", "/console/guardrails", "GetGuardrails"),
    NavEntry("items", "Items", "/console/items", "GetItemPrices"),
    NavEntry("fairness", "Fairness", "/console/fairness", "GetAuditReport"),
    NavEntry("promotions", "Promotions", "/console/promotions", "PublishPromotion"),
    NavEntry("experiments", "Experiments", "/console/experiments", "GetExperimentReport"),
)
