"""The pricing-policy interface: one capability, several policies behind it.

A policy sees an :class:`~pricing.context.ItemState` and a
:class:`~pricing.context.PublicContext` and nothing else; it declares which of their fields
it reads in ``inputs`` and is refused at load when any is shopper-level (rule G1,
:func:`pricing.inputs.check_policy_inputs`). Guardrails are applied after the proposal by the
engine, so a policy never needs to know them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, NamedTuple

from pricing.context import ItemState, PublicContext


class Proposal(NamedTuple):
    """A policy's raw price before guardrails, with the reasons behind it.

    Immutable. A named tuple rather than a frozen dataclass: the policy makes one per item
    twice per quote (the fair price in the clean room, and the fairness guard's re-run in the
    shopper's scope), and a named tuple is built several times faster.
    """

    price: float
    reason_codes: tuple[str, ...] = ()


class PricingPolicy(ABC):
    """Base class of every pricing policy.

    Subclasses set ``name``, ``version`` and ``inputs`` (the ItemState / PublicContext field
    names they read) and implement :meth:`propose`.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    inputs: ClassVar[frozenset[str]]

    @abstractmethod
    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        """Return the price this policy wants for ``item`` now.

        Parameters
        ----------
        item:
            Public state of the item.
        ctx:
            Public context of the quote.
        objective:
            The guardrail's objective: ``"revenue"``, ``"margin"`` or ``"sell_through"``.
        """
