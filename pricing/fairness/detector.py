"""The shopper-scoped re-run of the engine that the guard compares against the fair price.

The pricing engine caches one decision per item, epoch and public context, which is what makes
a price the same for everyone in an epoch (rule G3). For detection that cache is in the way:
the fair price is computed first in the clean room and cached, so a plain second call would
return it without running the policy in the shopper's scope, and a hostile policy would never
be seen. :class:`ShopperScopedDetector` therefore runs the engine's own pricing step (policy
proposal, then guardrails, with the same catalogue, guardrails, policy and price history)
without the cache, and with a price history it can read but never write: what it computes is
only compared, never served or remembered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pricing.context import PublicContext
from pricing.engine import PriceDecision, PricingEngine
from pricing.price_history import PriceHistory


class _ReadOnlyHistory:
    """The engine's price history, readable; writes are dropped (detector prices are not served)."""

    def __init__(self, inner: PriceHistory) -> None:
        self.inner = inner

    def record(self, item_id: str, start: datetime, price: float) -> None:
        return None

    def in_force(self, item_id: str, since: datetime, until: datetime) -> Sequence[float]:
        return self.inner.in_force(item_id, since, until)

    def last(self, item_id: str, until: datetime) -> float | None:
        return self.inner.last(item_id, until)


class _ShadowEngine(PricingEngine):
    """A :class:`PricingEngine` that follows another one's configuration and never caches."""

    def __init__(self, main: PricingEngine) -> None:
        super().__init__(
            main.catalog,
            main.guardrails,
            main._schedule,
            history=_ReadOnlyHistory(main.history),
            clock=main.clock,
        )
        self._main = main

    def _follow(self) -> None:
        # The main engine may get a new catalogue, guardrail set or policy at any time.
        main = self._main
        if main.catalog is not self._catalog or main.guardrails is not self._guardrails:
            self._catalog = main.catalog
            self._guardrails = main.guardrails
            self._bands = {}
        self._schedule = main._schedule
        history = self.history
        if not isinstance(history, _ReadOnlyHistory) or history.inner is not main.history:
            self.history = _ReadOnlyHistory(main.history)

    def decide(self, item_ids: Sequence[str], ctx: PublicContext) -> list[PriceDecision]:
        """Price every item afresh in the caller's scope (no cache, nothing recorded)."""
        self._follow()
        epoch = self.clock.index(ctx.at)
        return [self._decide_one(item_id, epoch, ctx) for item_id in item_ids]


class ShopperScopedDetector:
    """Runs ``engine``'s pricing in the caller's scope, uncached, for comparison only.

    Parameters
    ----------
    engine:
        The engine whose catalogue, guardrails, policy, clock and history are followed.
    """

    def __init__(self, engine: PricingEngine) -> None:
        self._shadow = _ShadowEngine(engine)

    def decide(self, item_ids: Sequence[str], ctx: PublicContext) -> list[PriceDecision]:
        """What the engine would price ``item_ids`` at if nothing were cached."""
        return self._shadow.decide(item_ids, ctx)
