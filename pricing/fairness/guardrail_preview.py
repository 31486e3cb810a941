"""What a proposed guardrail set would do to prices, decided by the pricing engine, changing
nothing.

The preview prices the same items twice in the current price epoch with the serving engine's
own catalogue, clock and policy: once under the guardrail set in force, once under the
proposed one. Both runs use throwaway engines over a read-only view of the price history, so
no price is recorded, pinned or served, and the two runs differ only in the guardrails. Every
price is decided without a shopper (the preview has none), like the guard's clean room.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pricing.context import PublicContext
from pricing.engine import PricingEngine
from pricing.guardrails import GuardrailSet
from pricing.price_history import PriceHistory

#: Edges of the histogram of relative price moves, in percent; outer bins are open.
MOVE_EDGES_PCT: Final[tuple[float, ...]] = (
    -20.0,
    -10.0,
    -5.0,
    -2.0,
    -0.5,
    0.5,
    2.0,
    5.0,
    10.0,
    20.0,
)
#: A move smaller than a cent is no move (prices are rounded to cents).
_CENT: Final[float] = 0.005


@dataclass(frozen=True)
class PriceMove:
    """One item's price now and under the proposal."""

    item_id: str
    current: float
    proposed: float

    @property
    def delta(self) -> float:
        """Proposed minus current."""
        return round(self.proposed - self.current, 2)

    @property
    def pct(self) -> float:
        """The move relative to the current price, in percent."""
        return 0.0 if self.current == 0 else 100.0 * (self.proposed - self.current) / self.current


@dataclass(frozen=True)
class GuardrailPreview:
    """The outcome of a dry run over a scope's items.

    ``bins`` holds ``(low_pct, high_pct, count)`` with infinite outer edges; ``largest`` the
    moves of largest magnitude, largest first.
    """

    items: int
    changed: int
    up: int
    down: int
    epoch_label: str
    largest: tuple[PriceMove, ...]
    bins: tuple[tuple[float, float, int], ...]


class _ReadOnlyHistory:
    """The served-price history, readable but not writable: a dry run records nothing."""

    def __init__(self, inner: PriceHistory) -> None:
        self._inner = inner

    def record(self, item_id: str, start: datetime, price: float) -> None:
        """Recorded by no one (dry run)."""

    def record_many(self, entries: object) -> None:
        """Recorded by no one (dry run)."""

    def in_force(self, item_id: str, since: datetime, until: datetime) -> Sequence[float]:
        """As the served history says."""
        return self._inner.in_force(item_id, since, until)

    def last(self, item_id: str, until: datetime) -> float | None:
        """As the served history says."""
        return self._inner.last(item_id, until)

    def __getattr__(self, name: str) -> Any:
        # The engine's one-lookup window read (``last_and_in_force``) when the history has it.
        if name == "last_and_in_force":
            return getattr(self._inner, name)
        raise AttributeError(name)


def _bins(moves: Sequence[PriceMove]) -> tuple[tuple[float, float, int], ...]:
    edges = (-math.inf, *MOVE_EDGES_PCT, math.inf)
    counts = [0] * (len(edges) - 1)
    for m in moves:
        pct = m.pct
        for i in range(len(counts)):
            if pct < edges[i + 1] or i == len(counts) - 1:
                counts[i] += 1
                break
    return tuple((edges[i], edges[i + 1], counts[i]) for i in range(len(counts)))


def preview_guardrails(
    engine: PricingEngine,
    capability: object,
    proposed: GuardrailSet,
    item_ids: Sequence[str],
    at: datetime,
    *,
    top: int = 10,
) -> GuardrailPreview:
    """Price ``item_ids`` under the set in force and under ``proposed``; change nothing.

    Parameters
    ----------
    engine:
        The serving engine: its catalogue, clock, policy and history are read, never written.
    capability:
        The seal of the serving engine (only the fairness guard holds it).
    proposed:
        The whole guardrail set as it would be after the change.
    item_ids:
        The items of the scope being changed.
    at:
        When (picks the price epoch).
    top:
        How many of the largest moves to keep.

    Returns
    -------
    GuardrailPreview

    Raises
    ------
    NotFound
        An unknown item id.
    """
    epoch = engine.clock.index(at)
    policy = engine.policy_for(epoch, capability=capability)
    history = _ReadOnlyHistory(engine.history)
    ctx = PublicContext(at=at)
    ids = list(item_ids)
    now = PricingEngine(
        engine.catalog, engine.guardrails, policy, history=history, clock=engine.clock
    )
    then = PricingEngine(engine.catalog, proposed, policy, history=history, clock=engine.clock)
    before = now.decide(ids, ctx)
    after = then.decide(ids, ctx)
    moves = [
        PriceMove(a.item_id, a.final_price, b.final_price)
        for a, b in zip(before, after, strict=True)
    ]
    changed = [m for m in moves if abs(m.proposed - m.current) >= _CENT]
    largest = sorted(changed, key=lambda m: (-abs(m.pct), m.item_id))[:top]
    return GuardrailPreview(
        items=len(moves),
        changed=len(changed),
        up=sum(1 for m in changed if m.proposed > m.current),
        down=sum(1 for m in changed if m.proposed < m.current),
        epoch_label=engine.clock.label(epoch),
        largest=tuple(largest),
        bins=_bins(moves),
    )
