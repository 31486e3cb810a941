"""What the clean room accepts and sees: validated item lists, public-only contexts, admitted
decisions, and the stand-in price of a quarantined policy.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import replace

from fairshelf.errors import FailedPrecondition, InvalidArgument, PolicyRejected
from pricing.context import PublicContext
from pricing.fairness.decisions import FairDecision
from pricing.inputs import PUBLIC_INPUTS

MAX_ITEMS_PER_QUOTE = 1000
QUARANTINE_REASON = "FAIRNESS_QUARANTINE"

_PUBLIC_FIELDS = frozenset(f.name for f in dataclasses.fields(PublicContext))

# A country (ISO 3166-1 alpha-2) or a state/province (ISO 3166-2): coarse, public markets. A
# postcode, a city district or coordinates passed as a "region" would be precise location.
COARSE_REGION_PATTERN = r"^[A-Za-z]{2}(-[A-Za-z0-9]{1,3})?$"
_COARSE_REGION = re.compile(COARSE_REGION_PATTERN)


def check_region(region: str | None) -> None:
    """Refuse a region that is not a coarse market code (rule G1: no precise location).

    Raises
    ------
    InvalidArgument
        Naming the region.
    """
    if region is not None and region != "" and not _COARSE_REGION.fullmatch(region):
        raise InvalidArgument(
            f"region {region!r} is not a coarse market code (a country such as 'CN' or a "
            "state or province such as 'CN-31'); a price may not depend on a precise "
            "location (rule G1)",
            field="region",
        )


def public_only(ctx: PublicContext) -> PublicContext:
    """A plain :class:`PublicContext` with the same public fields and nothing else.

    A caller may pass a subclass, or an instance with extra attributes set on it (the request,
    a shopper); the clean room never sees those. A plain instance is used as it is.

    Raises
    ------
    InvalidArgument
        The region is finer than a country or state (see :func:`check_region`).
    """
    check_region(ctx.region)
    if type(ctx) is PublicContext and vars(ctx).keys() <= _PUBLIC_FIELDS:
        return ctx
    return PublicContext(
        at=ctx.at,
        region=ctx.region,
        competitor_prices=dict(ctx.competitor_prices),
        promotions=tuple(ctx.promotions),
    )


def quarantined(decision: FairDecision) -> FairDecision:
    """The decision a quarantined policy is replaced by: the item's public base price.

    A policy that once priced by shopper may also carry a shopper into later clean-room runs
    (a global, a cache it filled while the shopper was in scope), so its output is not used.
    """
    return replace(
        decision,
        final_price=decision.base_price,
        adjustment=0.0,
        reason_codes=(QUARANTINE_REASON,),
    )


def validate_items(item_ids: Sequence[str]) -> list[str]:
    """Check a quote request's item list at the edge.

    Raises
    ------
    InvalidArgument
        Empty, a bare string, more than 1,000 ids, duplicates or an empty id.
    """
    if isinstance(item_ids, str):
        raise InvalidArgument("item_ids must be a list of ids, not a string", field="item_ids")
    if type(item_ids) is list and len(item_ids) == 1 and type(item_ids[0]) is str and item_ids[0]:
        # The most common request on a product page; the general checks below cost more.
        return [item_ids[0]]
    # A list of strings (what both transports pass) is copied as it is; anything else is
    # converted id by id.
    if type(item_ids) is list and set(map(type, item_ids)) == {str}:
        items = item_ids.copy()
    else:
        items = [str(i) for i in item_ids]
    if not items:
        raise InvalidArgument("item_ids must name at least one item", field="item_ids")
    if len(items) > MAX_ITEMS_PER_QUOTE:
        raise InvalidArgument(
            f"at most {MAX_ITEMS_PER_QUOTE} items per quote, got {len(items)}",
            field="item_ids",
        )
    distinct = set(items)
    if len(distinct) != len(items):
        raise InvalidArgument("item_ids contains duplicates", field="item_ids")
    if "" in distinct:
        raise InvalidArgument("item_ids contains an empty id", field="item_ids")
    return items


def admit(decision: FairDecision, epoch: int) -> None:
    """Accept a fresh clean-room decision: public inputs only (rule G1 again), right epoch.

    Raises
    ------
    PolicyRejected
        The decision names a non-public input.
    FailedPrecondition
        The engine and the guard disagree about the epoch.
    """
    if not PUBLIC_INPUTS.issuperset(decision.inputs):
        bad = sorted(set(decision.inputs) - PUBLIC_INPUTS)
        raise PolicyRejected(
            f"policy {decision.policy_name!r} version {decision.policy_version} priced with "
            f"non-public input(s) {bad}; quote refused (rule G1)",
            field="inputs",
        )
    if decision.epoch is not None and decision.epoch != epoch:
        raise FailedPrecondition(
            f"pricing engine epoch {decision.epoch} differs from the guard's epoch {epoch}: "
            "both must use the same EpochClock"
        )
