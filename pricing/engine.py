"""The pricing engine: policy proposal, then guardrails, fixed per price epoch.

``PricingEngine.decide`` is a pure function of (catalogue, guardrail set, price history,
policy, item state, public context) plus its per-epoch cache: the same item, epoch and public
context always give the same :class:`PriceDecision`, whoever asks. It never sees a shopper; the
fairness guard (``pricing.fairness``) wraps it and is the only way a quote leaves.

An engine used offline (the simulator, benchmarks, the guardrail audit) is called directly. The
engine the fairness guard serves from is *sealed* with a capability object that only the guard
holds (:meth:`PricingEngine.seal`): from then on :meth:`~PricingEngine.decide`,
:meth:`~PricingEngine.warm` and :meth:`~PricingEngine.policy_for` refuse any caller that does
not present that very object, so code holding a reference to the serving engine cannot price
around the guard.

The hot path avoids pandas and recomputation: each item's guardrail band is resolved once per
guardrail version, and each decision is cached per (item, epoch, item's public context).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock
from typing import NamedTuple, Protocol, runtime_checkable

from fairshelf.errors import FailedPrecondition, NotFound, PermissionDenied
from pricing.catalog import PricingCatalog
from pricing.context import ItemState, PublicContext
from pricing.epochs import EpochClock
from pricing.guardrails import EffectiveGuardrail, GuardrailSet, ItemBand, enforce, item_band
from pricing.inputs import check_policy_inputs
from pricing.policy import PricingPolicy
from pricing.price_history import InMemoryPriceHistory, PriceHistory

CHANGE_WINDOW = timedelta(hours=24)
# Reason code: the change limit was measured from the shelf price (no dynamic price yet).
CHANGE_FROM_BASE_PRICE = "CHANGE_FROM_BASE_PRICE"
_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class PriceDecision:
    """The engine's price for one item in one epoch and public context.

    ``adjustment`` is ``final_price - base_price``; ``inputs`` are the policy's declared inputs
    (rule G6: every quote can say what it depended on).
    """

    item_id: str
    final_price: float
    base_price: float
    adjustment: float
    reason_codes: tuple[str, ...]
    policy: str
    policy_version: str
    inputs: tuple[str, ...]
    guardrail_scope: str
    guardrail_version: int
    epoch: int
    epoch_start: datetime
    epoch_label: str
    proposed_price: float
    decision_id: str


@runtime_checkable
class PolicySchedule(Protocol):
    """Which policy prices a given epoch (a fixed policy, or a switchback experiment)."""

    def policy_for(self, epoch: int) -> PricingPolicy:
        """The policy in charge during ``epoch``."""
        ...

    def policies(self) -> Sequence[PricingPolicy]:
        """Every policy the schedule can return (checked at load)."""
        ...


class FixedPolicy:
    """A schedule with one policy in every epoch."""

    def __init__(self, policy: PricingPolicy) -> None:
        self.policy = policy

    def policy_for(self, epoch: int) -> PricingPolicy:
        """Always the same policy."""
        return self.policy

    def policies(self) -> Sequence[PricingPolicy]:
        """The one policy."""
        return (self.policy,)


ItemContextKey = tuple[str, float | None, tuple[str, ...]]


class _HistoryWindow(Protocol):
    def __call__(
        self, item_id: str, since_s: float, last_until_s: float, until_s: float
    ) -> tuple[float | None, Sequence[float]]: ...


class _EpochFrame(NamedTuple):
    epoch: int
    start: datetime
    label: str
    since: datetime
    before: datetime
    ctx: PublicContext
    policy: PricingPolicy
    inputs: tuple[str, ...]
    guardrail_version: int
    # The history's combined lookup when it has one, with the window in epoch seconds.
    window: _HistoryWindow | None
    since_s: float
    before_s: float
    start_s: float
    # The constant parts of the decision id's text (see _decide_one).
    id_head: str
    id_tail: str
    # One tuple per distinct list of reason codes, shared by the decisions of this call (fewer
    # objects kept per pinned decision, so fewer for the garbage collector to walk).
    codes: dict[tuple[str, ...], tuple[str, ...]]


def item_context_key(item_id: str, ctx: PublicContext) -> ItemContextKey:
    """The part of the public context that can move this item's price.

    Two contexts with equal keys give the same price for the item in the same epoch; it is a
    coarsening of :meth:`PublicContext.key` restricted to the item's own competitor price.
    """
    return (ctx.region or "", ctx.competitor_prices.get(item_id), ctx.promotions)


class PricingEngine:
    """Decides prices: policy proposal, guardrail enforcement, one price per epoch.

    Parameters
    ----------
    catalog:
        Item states (base price, cost, stock, elasticity).
    guardrails:
        The guardrail set in force.
    policy:
        A :class:`~pricing.policy.PricingPolicy` or a :class:`PolicySchedule`. Every policy's
        inputs are checked against rule G1 here, at load.
    history:
        Served prices, for the 24 h change limit and ``current_price``; in memory by default.
    clock:
        The price epoch clock (hourly by default).
    """

    def __init__(
        self,
        catalog: PricingCatalog,
        guardrails: GuardrailSet,
        policy: PricingPolicy | PolicySchedule,
        *,
        history: PriceHistory | None = None,
        clock: EpochClock | None = None,
    ) -> None:
        self._lock = Lock()
        self.clock = clock or EpochClock()
        self.history: PriceHistory = history if history is not None else InMemoryPriceHistory()
        self._catalog = catalog
        self._guardrails = guardrails
        self._schedule = self._checked(policy)
        self._bands: dict[str, ItemBand] = {}
        self._category_guardrails: dict[str, tuple[GuardrailSet, EffectiveGuardrail]] = {}
        self._cache: dict[int, dict[tuple[str, ItemContextKey], PriceDecision]] = {}
        self._seal: object | None = None

    def seal(self, capability: object) -> None:
        """Reserve this engine for the holder of ``capability`` (the fairness guard).

        After sealing, :meth:`decide`, :meth:`warm` and :meth:`policy_for` raise
        :class:`~fairshelf.errors.PermissionDenied` unless called with ``capability=`` that very
        object (compared by identity, so an equal-looking copy does not pass).

        Raises
        ------
        FailedPrecondition
            The engine is already sealed, or has already decided prices: those were decided
            outside the guard and would be served from the cache as if the guard had.
        """
        with self._lock:
            if self._seal is not None:
                raise FailedPrecondition("pricing engine is already sealed by a fairness guard")
            if any(self._cache.values()):
                raise FailedPrecondition(
                    "pricing engine already decided prices outside the fairness guard; "
                    "build a fresh engine for the guard (FairQuoteService.build)"
                )
            self._seal = capability

    @property
    def sealed(self) -> bool:
        """True once a fairness guard owns the engine (see :meth:`seal`)."""
        return self._seal is not None

    def _check_capability(self, capability: object | None) -> None:
        if self._seal is not None and capability is not self._seal:
            raise PermissionDenied(
                "this pricing engine serves quotes through the fairness guard only; "
                "quote with pricing.fairness.guard.FairQuoteService"
            )

    def policy_for(self, epoch: int, *, capability: object | None = None) -> PricingPolicy:
        """The policy in charge during ``epoch`` (what the fairness guard's detector re-asks).

        Raises
        ------
        PermissionDenied
            The engine is sealed and ``capability`` is not its seal.
        """
        if self._seal is not None and capability is not self._seal:
            self._check_capability(capability)
        return self._schedule.policy_for(epoch)

    @staticmethod
    def _checked(policy: PricingPolicy | PolicySchedule) -> PolicySchedule:
        schedule: PolicySchedule = (
            FixedPolicy(policy) if isinstance(policy, PricingPolicy) else policy
        )
        for p in schedule.policies():
            check_policy_inputs(p.name, p.inputs)
        return schedule

    @property
    def catalog(self) -> PricingCatalog:
        """The catalogue in use."""
        return self._catalog

    @property
    def guardrails(self) -> GuardrailSet:
        """The guardrail set in force."""
        return self._guardrails

    def set_catalog(self, catalog: PricingCatalog) -> None:
        """Swap the catalogue (a new bundle, updated stock). Later epochs use it."""
        with self._lock:
            self._catalog = catalog
            self._bands = {}
            self._category_guardrails = {}
            self._drop_future_cache()

    def set_guardrails(self, guardrails: GuardrailSet) -> None:
        """Swap the guardrail set; decisions already made stand for their epoch."""
        with self._lock:
            self._guardrails = guardrails
            self._bands = {}
            self._category_guardrails = {}
            self._drop_future_cache()

    def set_policy(self, policy: PricingPolicy | PolicySchedule) -> None:
        """Swap the policy (checked against rule G1 first)."""
        schedule = self._checked(policy)
        with self._lock:
            self._schedule = schedule

    def _drop_future_cache(self) -> None:
        # Prices already served this epoch stay fixed (rule G3); only older epochs are dropped.
        if self._cache:
            newest = max(self._cache)
            self._cache = {newest: self._cache[newest]}

    def effective_guardrail(self, item_id: str) -> EffectiveGuardrail:
        """The resolved guardrail of one item under the set in force.

        Raises
        ------
        NotFound
            Unknown item.
        """
        state = self._catalog.get(item_id)
        return self._guardrails.effective(item_id, state.category)

    def band(self, item_id: str) -> ItemBand:
        """The item's static guardrail band, resolved once per guardrail version."""
        band = self._bands.get(item_id)
        if band is None:
            state = self._catalog.get(item_id)
            guardrails = self._guardrails
            if f"item:{item_id}" in guardrails.rules:
                eff = guardrails.effective(item_id, state.category)
            else:
                # Without an item rule the resolution depends on the category only (the band
                # reads neither the item id nor the category of the resolved guardrail).
                # Keyed by the set too, so a band racing a swap never keeps the old set's rules.
                hit = self._category_guardrails.get(state.category)
                if hit is not None and hit[0] is guardrails:
                    eff = hit[1]
                else:
                    eff = guardrails.effective(item_id, state.category)
                    self._category_guardrails[state.category] = (guardrails, eff)
            band = item_band(eff, state.base_price, state.unit_cost)
            self._bands[item_id] = band
        return band

    def decide(
        self,
        item_ids: Sequence[str],
        ctx: PublicContext,
        *,
        capability: object | None = None,
    ) -> list[PriceDecision]:
        """Price every item for the epoch of ``ctx.at``.

        Parameters
        ----------
        item_ids:
            Items to price (duplicates allowed; each gets the same decision).
        ctx:
            Public context; its time picks the price epoch.
        capability:
            The seal of a sealed engine (see :meth:`seal`); not needed offline.

        Returns
        -------
        list[PriceDecision]
            One per requested id, in order.

        Raises
        ------
        NotFound
            An unknown item id (nothing is priced).
        PermissionDenied
            The engine is sealed and ``capability`` is not its seal.
        """
        self._check_capability(capability)
        epoch = self.clock.index(ctx.at)
        bucket = self._cache.get(epoch)
        if bucket is None:
            with self._lock:
                bucket = self._cache.setdefault(epoch, {})
                # Keep the previous epoch too: requests straddling the boundary still hit.
                for old in [e for e in self._cache if e < epoch - 1]:
                    del self._cache[old]
        if ctx.competitor_prices:
            keys = [(item_id, item_context_key(item_id, ctx)) for item_id in item_ids]
        else:
            # No item has a competitor price: every item shares one context key.
            shared = (ctx.region or "", None, ctx.promotions)
            keys = [(item_id, shared) for item_id in item_ids]
        found = [bucket.get(k) for k in keys]
        if any(d is None for d in found):
            found = self._decide_missing(keys, found, bucket, ctx, epoch)
        return found  # type: ignore[return-value]

    def warm(
        self,
        ctx: PublicContext,
        item_ids: Sequence[str] | None = None,
        *,
        capability: object | None = None,
    ) -> int:
        """Decide every item (or ``item_ids``) for the epoch of ``ctx`` ahead of requests.

        Meant for a timer that fires just after each epoch starts, so that the first shoppers
        of the epoch do not pay for the decisions. Only the current epoch can be warmed: a
        price decided before its epoch began would not see the prices served until then.

        Returns
        -------
        int
            Number of items priced.

        Raises
        ------
        PermissionDenied
            The engine is sealed and ``capability`` is not its seal.
        """
        ids = list(self._catalog) if item_ids is None else list(item_ids)
        return len(self.decide(ids, ctx, capability=capability))

    def _decide_missing(
        self,
        keys: list[tuple[str, ItemContextKey]],
        found: list[PriceDecision | None],
        bucket: dict[tuple[str, ItemContextKey], PriceDecision],
        ctx: PublicContext,
        epoch: int,
    ) -> list[PriceDecision | None]:
        """Decide every missing item under one lock and record them in one write.

        Nothing is cached or returned unless every price was decided and recorded, so a
        failure (unknown item, history store down) leaves no half-served request behind.
        """
        with self._lock:
            missing = [k for k, d in zip(keys, found, strict=True) if d is None]
            unknown = [k[0] for k in missing if k[0] not in self._catalog]
            if unknown:
                unpriced = sorted(set(unknown) & set(self._catalog.unpriced))
                if unpriced:
                    raise NotFound(
                        f"item(s) {unpriced[:10]} have no base price and are not priced",
                        field="item_ids",
                    )
                raise NotFound(f"unknown item(s) {sorted(set(unknown))[:10]}", field="item_ids")
            frame = self._frame(ctx, epoch)
            made: dict[tuple[str, ItemContextKey], PriceDecision] = {}
            for key in missing:
                if key in made:
                    continue
                decision = bucket.get(key)
                if decision is None:
                    made[key] = self._decide_one(key[0], key[1], frame)
            if made:
                record_many = getattr(self.history, "record_many", None)
                entries = [(k[0], frame.start, d.final_price) for k, d in made.items()]
                if record_many is not None:
                    record_many(entries)
                else:
                    for item_id, start, price in entries:
                        self.history.record(item_id, start, price)
                bucket.update(made)
            return [d if d is not None else bucket[k] for k, d in zip(keys, found, strict=True)]

    def _frame(self, ctx: PublicContext, epoch: int) -> _EpochFrame:
        """Everything a miss needs that is the same for all items of this call."""
        start = self.clock.start(epoch)
        # The policy sees the epoch start, not the request time, so every request in the
        # epoch computes the same price. Built once per call: copying the context validates
        # every competitor price again.
        at_epoch = ctx if ctx.at == start else dataclasses.replace(ctx, at=start)
        policy = self._schedule.policy_for(epoch)
        since = start - CHANGE_WINDOW
        before = start - _JUST_BEFORE
        version = self._guardrails.version
        return _EpochFrame(
            epoch=epoch,
            start=start,
            label=self.clock.label(epoch),
            since=since,
            before=before,
            ctx=at_epoch,
            policy=policy,
            inputs=tuple(sorted(policy.inputs)),
            guardrail_version=version,
            window=getattr(self.history, "last_and_in_force", None),
            since_s=since.timestamp(),
            before_s=before.timestamp(),
            start_s=start.timestamp(),
            id_head=f", {epoch!r}, ",
            id_tail=f", {version!r}, {policy.name!r}, {policy.version!r}, ",
            codes={},
        )

    def _decide_one(self, item_id: str, ctx_key: ItemContextKey, f: _EpochFrame) -> PriceDecision:
        state = self._catalog.get(item_id)
        band = self.band(item_id)
        recent: Sequence[float]
        if f.window is not None:
            last, recent = f.window(item_id, f.since_s, f.before_s, f.start_s)
        else:
            last = self.history.last(item_id, f.before)
            recent = self.history.in_force(item_id, f.since, f.start)
        if last is not None:
            # A shallow copy with one field set: dataclasses.replace and copy.copy both cost
            # several times more on this path, which every epoch's first request pays.
            fresh = object.__new__(ItemState)
            fresh.__dict__.update(state.__dict__, current_price=last)
            state = fresh
        # SPEC §6: before its first dynamic quote an item's shelf price is the price in force,
        # so the 24 h change limit binds from the first quote after dynamic pricing starts.
        from_base = last is None and not recent and state.base_price > 0
        if from_base:
            recent = (state.base_price,)
        policy = f.policy
        proposal = policy.propose(state, f.ctx, band.objective)
        price, codes = enforce(proposal.price, band, recent)
        if from_base and "CHANGE_LIMITED" in codes:
            codes.append(CHANGE_FROM_BASE_PRICE)
        # The text of repr((item_id, epoch, ctx_key, guardrail_version, policy name, policy
        # version, price)), built from the parts that vary: the tuple's repr costs twice that.
        text = "(" + repr(item_id) + f.id_head + repr(ctx_key) + f.id_tail + repr(price) + ")"
        digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
        reason_codes = (*proposal.reason_codes, *codes)
        reason_codes = f.codes.setdefault(reason_codes, reason_codes)
        return PriceDecision(
            item_id=item_id,
            final_price=price,
            base_price=state.base_price,
            adjustment=round(price - state.base_price, 2),
            reason_codes=reason_codes,
            policy=policy.name,
            policy_version=policy.version,
            inputs=f.inputs,
            guardrail_scope=band.scope,
            guardrail_version=f.guardrail_version,
            epoch=f.epoch,
            epoch_start=f.start,
            epoch_label=f.label,
            proposed_price=proposal.price,
            decision_id=digest,
        )
