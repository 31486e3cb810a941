"""Prometheus metrics of the fairness guard.

prometheus_client is an in-process counter library, not a transport: the serving layer exposes
the default registry on ``/metrics``.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter

FAIRNESS_VIOLATIONS: Final[Counter] = Counter(
    "fairshelf_fairness_violations_total",
    "Quotes where a fairness rule caught a shopper-dependent price and served the fair one.",
    ["rule", "policy"],
)

QUOTES_GUARDED: Final[Counter] = Counter(
    "fairshelf_quotes_guarded_total",
    "Item quotes that went through the fairness guard.",
)


def record_violation(rule: str, policy: str) -> None:
    """Count one violation of ``rule`` (``"G2"``, ``"G4"``) by ``policy``."""
    FAIRNESS_VIOLATIONS.labels(rule=rule, policy=policy).inc()


def violations_seen(rule: str, policy: str) -> float:
    """The current count for ``rule`` and ``policy`` (tests and the report read it)."""
    return FAIRNESS_VIOLATIONS.labels(rule=rule, policy=policy)._value.get()
