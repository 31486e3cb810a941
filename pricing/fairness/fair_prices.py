"""The fair prices of the epoch: computed once, in a clean room, and pinned.

For each (item, price epoch, public context) the shopper-free decision is computed the first
time it is needed, on a dedicated thread, in an empty ``contextvars`` context, with a context
holding public fields only: no request scope, no request object, no shopper anywhere on that
thread's stack. It is then pinned until the epoch after next, so every shopper in the epoch is
served the same list price (rule G3) and no later request can change it.

The book also keeps the quarantine list: a policy caught pricing by shopper (rule G2) may carry
a shopper into a later clean-room run through a global or a cache it filled while a shopper
was in scope, so its later decisions are replaced by the item's public base price.
"""

from __future__ import annotations

import contextvars
import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pricing.context import PublicContext
from pricing.engine import PricingEngine
from pricing.errors import FailedPrecondition
from pricing.fairness.clean_room import admit, quarantined
from pricing.fairness.decisions import FairDecision, read_decision

PinKey = tuple[str, int, tuple[Any, ...]]


class FairPriceBook:
    """Pinned shopper-free decisions of ``engine``, per item, epoch and public context.

    Parameters
    ----------
    engine:
        The pricing engine; only called from the clean-room thread.
    """

    def __init__(self, engine: PricingEngine) -> None:
        self._engine = engine
        self._pins: dict[PinKey, FairDecision] = {}
        self._quarantined: set[tuple[str, str]] = set()
        self._latest_epoch = -1
        self._lock = threading.Lock()
        self._clean_room = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="fairshelf-clean-room"
        )

    def fair(
        self, items: list[str], clean_ctx: PublicContext, epoch: int, ckey: tuple[Any, ...]
    ) -> dict[str, FairDecision]:
        """The pinned decision of every item, computing the missing ones in the clean room.

        Parameters
        ----------
        items:
            Validated item ids.
        clean_ctx:
            A context holding public fields only.
        epoch, ckey:
            The price epoch and ``clean_ctx.key()``.

        Raises
        ------
        PolicyRejected
            A fresh decision names a non-public input (rule G1).
        FailedPrecondition
            The engine returned no decision for an item, or another epoch.
        NotFound
            From the engine, for an unknown item.
        """
        pins = self._pins
        fair: dict[str, FairDecision] = {}
        missing: list[str] = []
        for item_id in items:
            pinned = pins.get((item_id, epoch, ckey))
            if pinned is None:
                missing.append(item_id)
            else:
                fair[item_id] = pinned
        if missing:
            config = (self._engine.catalog, self._engine.guardrails)
            decisions = self._clean_room.submit(
                contextvars.Context().run, self._engine.decide, missing, clean_ctx
            ).result()
            for decision in (read_decision(d) for d in decisions):
                admit(decision, epoch)
                decision = dataclasses.replace(decision, config=config)
                if (decision.policy_name, decision.policy_version) in self._quarantined:
                    decision = quarantined(decision)
                fair[decision.item_id] = pins.setdefault((decision.item_id, epoch, ckey), decision)
            absent = [i for i in missing if i not in fair]
            if absent:
                raise FailedPrecondition(f"pricing engine returned no decision for {absent}")
            self._forget_old_epochs(epoch)
        return fair

    def quarantine(self, policy_name: str, policy_version: str) -> bool:
        """Stop trusting a policy's clean-room output; True the first time it is named."""
        key = (policy_name, policy_version)
        with self._lock:
            if key in self._quarantined:
                return False
            self._quarantined.add(key)
            return True

    @property
    def quarantined(self) -> frozenset[tuple[str, str]]:
        """(name, version) of policies caught pricing by shopper."""
        return frozenset(self._quarantined)

    def close(self) -> None:
        """Stop the clean-room thread."""
        self._clean_room.shutdown(wait=True)

    def _forget_old_epochs(self, epoch: int) -> None:
        if epoch <= self._latest_epoch:
            return
        with self._lock:
            if epoch <= self._latest_epoch:
                return
            self._latest_epoch = epoch
            # Keep the previous epoch too: requests straddling the boundary still hit.
            for key in [k for k in list(self._pins) if k[1] < epoch - 1]:
                self._pins.pop(key, None)
