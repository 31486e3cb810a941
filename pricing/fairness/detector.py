"""The shopper-scoped re-run of the policy that the guard compares with the fair price.

Only the policy's proposal can depend on a shopper: everything after it (guardrail band, price
history, rounding) is computed by the engine from public data. So to find out whether the
price depends on the shopper, the detector asks the engine's policy for its proposal again,
in the caller's scope (the shopper in the request scope, the request's own context object, the
caller's stack), for the same item state, epoch start and objective the engine used, and the
guard compares it with the proposal behind the fair price.

The engine's per-epoch decision cache is deliberately not used: the fair price is computed
first in the clean room and cached, so a cached answer would say nothing about what the policy
does with a shopper in sight. Nothing the policy proposes here is served or remembered; only the
public inputs handed to it (the item state with the price in force before the epoch, and the
guardrail objective) are kept per epoch, since they are the same for every request of the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pricing.context import ItemState, PublicContext
from pricing.engine import PricingEngine
from pricing.fairness.capability import _GUARD_CAPABILITY

_JUST_BEFORE = timedelta(microseconds=1)


class ShopperScopedDetector:
    """Re-asks ``engine``'s policy for its proposals in the caller's scope, uncached.

    Parameters
    ----------
    engine:
        The engine whose catalogue, policy schedule, guardrail objective, clock and price
        history are used, read-only.
    """

    def __init__(self, engine: PricingEngine) -> None:
        self._engine = engine
        # epoch -> item_id -> (item state as the policy sees it, objective), for the catalogue
        # and guardrail set in ``_config``: public inputs, rebuilt when either is swapped.
        self._inputs: dict[int, dict[str, tuple[ItemState, str]]] = {}
        self._config: tuple[Any, ...] = ()

    def proposals(
        self, item_ids: Sequence[str], ctx: PublicContext, epoch: int, start: datetime
    ) -> tuple[list[float], str, str]:
        """What the policy proposes for ``item_ids`` in epoch ``epoch``, asked in this scope.

        Parameters
        ----------
        item_ids:
            Items (already known to the engine: the clean room priced them).
        ctx:
            The context object exactly as the caller passed it.
        epoch:
            The price epoch.
        start:
            Its start time (what the policy sees as ``ctx.at``).

        Returns
        -------
        tuple[list[float], str, str]
            The proposed price of each item, in the order of ``item_ids``, and the name and
            version of the policy that proposed them.
        """
        engine = self._engine
        # As in the engine: the policy sees the epoch start, not the request time. A shallow
        # copy keeps whatever the caller's object carries (that is what is being tested) and
        # is cheaper than re-validating a new context.
        at_epoch = ctx
        if ctx.at != start:
            at_epoch = object.__new__(type(ctx))
            vars(at_epoch).update(vars(ctx))
            vars(at_epoch)["at"] = start
        policy = engine.policy_for(epoch, capability=_GUARD_CAPABILITY)
        # Name and version are read from the class before the first call, so a policy cannot
        # relabel itself for one shopper to dodge the comparison.
        kind = type(policy)
        name, version = kind.name, kind.version
        inputs = self._epoch_inputs(epoch)
        prices: list[float] = []
        for item_id in item_ids:
            known = inputs.get(item_id)
            if known is None:
                known = inputs[item_id] = self._item_inputs(item_id, start)
            prices.append(float(policy.propose(known[0], at_epoch, known[1]).price))
        return prices, name, version

    def _epoch_inputs(self, epoch: int) -> dict[str, tuple[ItemState, str]]:
        engine = self._engine
        catalog, guardrails = engine.catalog, engine.guardrails
        # By identity: a swap installs new objects, and comparing them by value costs more.
        if not self._config or self._config[0] is not catalog or self._config[1] is not guardrails:
            self._inputs, self._config = {}, (catalog, guardrails)
        inputs = self._inputs.get(epoch)
        if inputs is None:
            inputs = self._inputs.setdefault(epoch, {})
            # Keep the previous epoch too: requests straddling the boundary still hit.
            for old in [e for e in list(self._inputs) if e < epoch - 1]:
                self._inputs.pop(old, None)
        return inputs

    def _item_inputs(self, item_id: str, start: datetime) -> tuple[ItemState, str]:
        """The item state and objective the engine gives the policy in the epoch of ``start``."""
        engine = self._engine
        state = engine.catalog.get(item_id)
        last = engine.history.last(item_id, start - _JUST_BEFORE)
        if last is not None:
            # Same shallow copy as the engine's, so both runs see an equal state.
            fresh = object.__new__(ItemState)
            fresh.__dict__.update(state.__dict__, current_price=last)
            state = fresh
        return state, engine.band(item_id).objective
