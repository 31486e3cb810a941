"""The shopper-scoped re-run of the policy that the guard compares with the fair price.

Only the policy's proposal can depend on a shopper: everything after it (guardrail band, price
history, rounding) is computed by the engine from public data. So to find out whether the
price depends on the shopper, the detector asks the engine's policy for its proposal again,
in the caller's scope (the shopper in the request scope, the request's own context object, the
caller's stack), for the same item state, epoch start and objective the engine used, and the
guard compares it with the proposal behind the fair price.

The engine's per-epoch decision cache is deliberately not used: the fair price is computed
first in the clean room and cached, so a cached answer would say nothing about what the policy
does with a shopper in sight. Nothing the detector computes is served or remembered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from pricing.context import PublicContext
from pricing.engine import PricingEngine

_JUST_BEFORE = timedelta(microseconds=1)

# (proposed price, policy name, policy version): what must match the fair decision's.
ProposalIdentity = tuple[float, str, str]


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

    def proposals(
        self, item_ids: Sequence[str], ctx: PublicContext, epoch: int, start: datetime
    ) -> dict[str, ProposalIdentity]:
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
        dict[str, ProposalIdentity]
            item_id -> (proposed price, policy name, policy version).
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
        policy = engine._schedule.policy_for(epoch)
        catalog = engine.catalog
        history = engine.history
        before = start - _JUST_BEFORE
        out: dict[str, ProposalIdentity] = {}
        for item_id in item_ids:
            state = catalog.get(item_id)
            last = history.last(item_id, before)
            if last is not None:
                state = dataclasses.replace(state, current_price=last)
            # Name and version are read from the class before the call, so a policy cannot
            # relabel itself for one shopper to dodge the comparison.
            kind = type(policy)
            name, version = kind.name, kind.version
            proposal = policy.propose(state, at_epoch, engine.band(item_id).objective)
            out[item_id] = (float(proposal.price), name, version)
        return out
