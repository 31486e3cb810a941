"""The fair prices of the epoch: computed once, in a clean room, and pinned.

For each (item, price epoch, public context) the shopper-free decision is computed the first
time it is needed, on a dedicated thread, in an empty ``contextvars`` context, with a context
holding public fields only: no request scope, no request object, no shopper anywhere on that
thread's stack. It is then pinned until the epoch after next, so every shopper in the epoch is
served the same list price (rule G3) and no later request can change it.

The same clean room can price items ahead of requests (:meth:`FairPriceBook.warm`, run at each
epoch start by :mod:`pricing.fairness.epoch_warmer` for the items quoted in the epoch before),
so that in steady state a returning item is already pinned and a request never waits for the
clean-room thread.

The book also keeps the quarantine list: a policy caught pricing by shopper (rule G2) may carry
a shopper into a later clean-room run through a global or a cache it filled while a shopper
was in scope, so its later decisions are replaced by the item's public base price.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fairshelf.errors import FailedPrecondition
from pricing.context import PublicContext
from pricing.engine import PriceDecision, PricingEngine
from pricing.fairness.capability import _GUARD_CAPABILITY
from pricing.fairness.clean_room import admit, quarantined
from pricing.fairness.decisions import FairDecision, read_decisions

# (epoch, public-context key): the pins of one epoch and context, item_id -> decision. Two
# levels, so a request hashes its context once instead of once per item.
PinKey = tuple[int, tuple[Any, ...]]

# Items a warm-up decides per turn before it lets request threads run. The first turn takes
# WARM_CHUNK items; later turns are sized so that one takes about WARM_TURN_SECONDS of
# interpreter time (a request that arrives meanwhile waits at most that long instead of the
# interpreter's 5 ms switch interval), within [WARM_CHUNK_MIN, WARM_CHUNK_MAX] items. Larger
# turns than a fixed 32 items matter: each turn records its prices in one transaction, and
# a commit costs as much as a few dozen rows.
WARM_CHUNK = 32
WARM_CHUNK_MIN = 8
WARM_CHUNK_MAX = 512
WARM_TURN_SECONDS = 0.002
# After each turn the warm-up rests this many times the turn's length, so it takes at most half
# of a core. Back to back, it held the interpreter for 2 ms in every 2 ms it could get for
# 15-20 s on 100,000 items: recommend latency on that worker tripled for that long each epoch.
WARM_REST_RATIO = 1.0


class FairPriceBook:
    """Pinned shopper-free decisions of ``engine``, per item, epoch and public context.

    Parameters
    ----------
    engine:
        The pricing engine; only called from the clean-room thread.
    """

    def __init__(self, engine: PricingEngine) -> None:
        self._engine = engine
        self._pins: dict[PinKey, dict[str, FairDecision]] = {}
        self._quarantined: set[tuple[str, str]] = set()
        self._latest_epoch = -1
        self._lock = threading.Lock()
        self._clean_room = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="fairshelf-clean-room"
        )

    def fair(
        self, items: list[str], clean_ctx: PublicContext, epoch: int, ckey: tuple[Any, ...]
    ) -> list[FairDecision]:
        """The pinned decision of every item, computing the missing ones in the clean room.

        Parameters
        ----------
        items:
            Validated item ids.
        clean_ctx:
            A context holding public fields only.
        epoch, ckey:
            The price epoch and ``clean_ctx.key()``.

        Returns
        -------
        list[FairDecision]
            One decision per item, in the order of ``items``.

        Raises
        ------
        PolicyRejected
            A fresh decision names a non-public input (rule G1).
        FailedPrecondition
            The engine returned no decision for an item, or another epoch.
        NotFound
            From the engine, for an unknown item.
        """
        pins = self._pins.get((epoch, ckey))
        if pins is not None:
            try:
                # Steady state: every item pinned by the epoch's warm-up.
                return [pins[item_id] for item_id in items]
            except KeyError:
                pass
        pinned = pins or {}
        missing = [i for i in items if i not in pinned]
        config = (self._engine.catalog, self._engine.guardrails)
        decisions = self._clean_room.submit(
            contextvars.Context().run, self._decide, missing, clean_ctx
        ).result()
        fresh = self._pin(decisions, epoch, ckey, config)
        absent = [i for i in missing if i not in fresh]
        if absent:
            raise FailedPrecondition(f"pricing engine returned no decision for {absent}")
        self._forget_old_epochs(epoch)
        return [fresh[i] if i in fresh else pinned[i] for i in items]

    def warm(
        self,
        clean_ctx: PublicContext,
        epoch: int,
        ckey: tuple[Any, ...],
        item_ids: Sequence[str] | None = None,
    ) -> int:
        """Pin the fair price of every catalogue item (or ``item_ids``) ahead of requests.

        Runs in the clean room like any other fair-price computation, a few items at a time so
        that requests arriving meanwhile are not held up. Items already pinned are skipped.

        Parameters
        ----------
        clean_ctx:
            A public-only context in epoch ``epoch`` (usually its start, no competitor
            prices, no promotions: the context most requests carry).
        epoch, ckey:
            The price epoch and ``clean_ctx.key()``.
        item_ids:
            Items to warm; the whole catalogue by default.

        Returns
        -------
        int
            Number of items newly pinned.

        Raises
        ------
        PolicyRejected
            A fresh decision names a non-public input (rule G1).
        """
        ids = list(self._engine.catalog) if item_ids is None else list(item_ids)
        pins = self._pins.get((epoch, ckey), {})
        todo = [i for i in ids if i not in pins]
        pinned = 0
        size = WARM_CHUNK
        start = 0
        while start < len(todo):
            pins = self._pins.get((epoch, ckey), pins)
            chunk = [i for i in todo[start : start + size] if i not in pins]
            start += size
            if not chunk:
                continue
            config = (self._engine.catalog, self._engine.guardrails)
            began = time.perf_counter()
            decisions = self._clean_room.submit(
                contextvars.Context().run, self._decide, chunk, clean_ctx
            ).result()
            # Between chunks the clean-room thread waits for work, so request threads run.
            took = time.perf_counter() - began
            pinned += len(self._pin(decisions, epoch, ckey, config))
            size = _next_chunk_size(size, len(chunk), took)
            time.sleep(took * WARM_REST_RATIO)
        self._forget_old_epochs(epoch)
        return pinned

    def _decide(self, items: list[str], clean_ctx: PublicContext) -> list[PriceDecision]:
        # Runs on the clean-room thread only; the capability unlocks the sealed engine.
        return self._engine.decide(items, clean_ctx, capability=_GUARD_CAPABILITY)

    def _pin(
        self,
        decisions: Sequence[PriceDecision],
        epoch: int,
        ckey: tuple[Any, ...],
        config: tuple[Any, ...],
    ) -> dict[str, FairDecision]:
        """Admit fresh decisions and pin them; the first pin of a key wins (rule G3)."""
        pins = self._pins.setdefault((epoch, ckey), {})
        out: dict[str, FairDecision] = {}
        for decision in read_decisions(decisions, config):
            admit(decision, epoch)
            if (decision.policy_name, decision.policy_version) in self._quarantined:
                decision = quarantined(decision)
            out[decision.item_id] = pins.setdefault(decision.item_id, decision)
        return out

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
            for key in [k for k in list(self._pins) if k[0] < epoch - 1]:
                self._pins.pop(key, None)


def _next_chunk_size(size: int, done: int, took: float) -> int:
    """The size of the next warm-up turn after ``done`` items took ``took`` seconds.

    Aims at :data:`WARM_TURN_SECONDS` per turn, at most doubling or halving per step so a
    stall of the machine (or one slow commit) does not swing the size.
    """
    if done < size or took <= 0.0:
        return size
    target = int(done * WARM_TURN_SECONDS / took)
    return max(WARM_CHUNK_MIN, min(WARM_CHUNK_MAX, size * 2, max(size // 2, target)))
