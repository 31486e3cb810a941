"""Real pricing policies for the fairness tests: one honest, several hostile.

Every hostile policy is a real :class:`~pricing.policy.PricingPolicy` subclass that declares
public inputs only (so rule G1 lets it load) and then tries to read the shopper through a side
channel. The guard must catch each one at quote time (rule G2).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pricing.catalog import PricingCatalog
from pricing.context import ItemState, PublicContext
from pricing.engine import PricingEngine
from pricing.fairness.guard import FairQuoteService
from pricing.fairness.programs import DiscountProgram, Eligibility, ProgramBook
from pricing.fairness.shopper import REQUEST_SCOPE, Shopper
from pricing.guardrails import GuardrailSet
from pricing.policy import PricingPolicy, Proposal
from pricing.promotions import PromotionBook
from serving.store.audit_store import AuditStore
from serving.store.db import Database
from serving.store.quote_store import QuoteStore

PUBLIC = frozenset({"base_price", "competitor_prices", "item_id"})


def _honest_price(item: ItemState, ctx: PublicContext) -> float:
    rival = ctx.competitor_prices.get(item.item_id)
    price = item.base_price if rival is None else min(item.base_price, rival * 0.99)
    return round(price, 2)


def _loyalty_surcharge(price: float, shopper: Shopper | None) -> float:
    # The 杀熟 pattern: long-tenure or frequent shoppers are assumed to tolerate more.
    if shopper is not None and (shopper.tenure_days >= 365 or shopper.orders >= 5):
        return round(price * 1.15, 2)
    return price


class HonestPolicy(PricingPolicy):
    """Base price, undercutting a public competitor price by 1%."""

    name: ClassVar[str] = "honest"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = PUBLIC

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        return Proposal(_honest_price(item, ctx), ("COMPETITOR_MATCH",))


class DeclaresTenurePolicy(HonestPolicy):
    """Openly declares a shopper-level input: must be refused at load (rule G1)."""

    name: ClassVar[str] = "declares_tenure"
    inputs: ClassVar[frozenset[str]] = PUBLIC | {"tenure"}


class ContextVarSnoopPolicy(PricingPolicy):
    """Side channel 1: reads the shopper from the request-scope context variable."""

    name: ClassVar[str] = "snoop_contextvar"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = PUBLIC

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        scope = REQUEST_SCOPE.get()
        shopper = scope.shopper if scope is not None else None
        return Proposal(_loyalty_surcharge(_honest_price(item, ctx), shopper))


@dataclass(frozen=True)
class ShopperAwareContext(PublicContext):
    """A careless request object: the public context with the shopper riding along."""

    shopper: Shopper | None = None


class RequestObjectSnoopPolicy(PricingPolicy):
    """Side channel 2: reads the shopper off the request object it was handed."""

    name: ClassVar[str] = "snoop_request"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = PUBLIC

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        shopper = getattr(ctx, "shopper", None)
        price = _honest_price(item, ctx)
        if isinstance(shopper, Shopper) and shopper.device == "ios":
            price = round(price * 1.10, 2)  # "Apple users pay more"
        return Proposal(price)


class StackSnoopPolicy(PricingPolicy):
    """Side channel 3: walks the call stack for any Shopper in a caller's locals."""

    name: ClassVar[str] = "snoop_stack"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = PUBLIC

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        frame: Any = sys._getframe(1)
        found: Shopper | None = None
        while frame is not None and found is None:
            for value in list(frame.f_locals.values()):
                if isinstance(value, Shopper) and value.shopper_id:
                    found = value
                    break
            frame = frame.f_back
        return Proposal(_loyalty_surcharge(_honest_price(item, ctx), found))


class CrossThreadSnoopPolicy(PricingPolicy):
    """Reads every thread's stack (``sys._current_frames``) for a Shopper.

    This reaches into the requesting thread even while the policy runs in the clean room, so
    it is the one channel the clean room cannot close; the guard must still contain it.
    """

    name: ClassVar[str] = "snoop_threads"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = PUBLIC

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        found: Shopper | None = None
        for top in sys._current_frames().values():
            frame: Any = top
            while frame is not None and found is None:
                for value in list(frame.f_locals.values()):
                    if isinstance(value, Shopper) and value.shopper_id:
                        found = value
                        break
                frame = frame.f_back
        return Proposal(_loyalty_surcharge(_honest_price(item, ctx), found))


_STASH: dict[str, Shopper] = {}


class GlobalStashPolicy(PricingPolicy):
    """Side channel 4: copies the shopper into a module global and prices from it later.

    Built to beat a naive differential check that runs the shopper's request first and the
    shopper-free one second: the second run reads the global and agrees with the first.
    """

    name: ClassVar[str] = "snoop_global"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = PUBLIC

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        scope = REQUEST_SCOPE.get()
        if scope is not None and scope.shopper is not None:
            _STASH["last"] = scope.shopper
        return Proposal(_loyalty_surcharge(_honest_price(item, ctx), _STASH.get("last")))


class ShopperCachePolicy(PricingPolicy):
    """Side channel 5: a price cache keyed by shopper, which also answers shopper-free calls.

    The first price it computes for an item (with whoever is in scope) is cached under the
    item too, so a shopper-free call asked later gets the poisoned entry.
    """

    name: ClassVar[str] = "snoop_cache"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = PUBLIC

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], float] = {}

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        scope = REQUEST_SCOPE.get()
        shopper = scope.shopper if scope is not None else None
        key = (shopper.shopper_id if shopper else "", item.item_id)
        if key not in self._cache:
            price = _loyalty_surcharge(_honest_price(item, ctx), shopper)
            self._cache[key] = price
            self._cache.setdefault(("", item.item_id), price)
        return Proposal(self._cache[key])


class RefusesLoyalPolicy(PricingPolicy):
    """Refuses to quote loyal shoppers at all (an error only in the shopper's scope)."""

    name: ClassVar[str] = "refuses_loyal"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = PUBLIC

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        scope = REQUEST_SCOPE.get()
        if scope is not None and scope.shopper is not None and scope.shopper.orders >= 5:
            raise RuntimeError("no quote for you")
        return Proposal(_honest_price(item, ctx))


HOSTILE_POLICIES: tuple[type[PricingPolicy], ...] = (
    ContextVarSnoopPolicy,
    RequestObjectSnoopPolicy,
    StackSnoopPolicy,
    GlobalStashPolicy,
    ShopperCachePolicy,
)


ITEMS: tuple[ItemState, ...] = tuple(
    ItemState(
        item_id=f"sku-{i:03d}",
        category="home/kitchen" if i % 2 else "toys/outdoor",
        base_price=round(9.99 + 3 * i, 2),
        unit_cost=round(4.0 + i, 2),
        stock=100,
    )
    for i in range(12)
)
ITEM_IDS: tuple[str, ...] = tuple(s.item_id for s in ITEMS)
AT = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)

NEW_COUPON = DiscountProgram(
    program_id="welcome10",
    title="Welcome coupon",
    public_text="New customers get 10% off their first order.",
    eligibility=Eligibility.NEW_CUSTOMER,
    percent_off=10,
)
MEMBER_PRICE = DiscountProgram(
    program_id="member5",
    title="Member price",
    public_text="Members of the store club pay 5% less on kitchen items.",
    eligibility=Eligibility.MEMBER,
    percent_off=5,
    categories=frozenset({"home/kitchen"}),
)


@dataclass
class GuardedShop:
    """A guard over a real engine with real SQLite logs, as the server wires it."""

    service: FairQuoteService
    engine: PricingEngine
    db: Database
    audit: AuditStore
    quotes: QuoteStore

    def close(self) -> None:
        self.service.close()
        self.db.close()


def make_shop(
    db_path: Path,
    policy: PricingPolicy,
    programs: Sequence[DiscountProgram] = (NEW_COUPON, MEMBER_PRICE),
    *,
    buffer_quotes: bool = False,
    promotions: PromotionBook | None = None,
) -> GuardedShop:
    """Wire engine, guard, audit log and quote log on a fresh SQLite file."""
    db = Database(str(db_path))
    audit = AuditStore(db)
    quotes = QuoteStore(db)
    engine = PricingEngine(PricingCatalog({s.item_id: s for s in ITEMS}), GuardrailSet(), policy)
    service = FairQuoteService(
        engine,
        quote_log=quotes,
        audit=audit,
        programs=ProgramBook(programs),
        buffer_quotes=buffer_quotes,
        promotions=promotions,
    )
    return GuardedShop(service, engine, db, audit, quotes)


@contextmanager
def built_service(db_path: Path, **kwargs: Any) -> Iterator[FairQuoteService]:
    """``FairQuoteService.build`` as serving calls it: the static policy, real SQLite logs."""
    db = Database(str(db_path))
    service = FairQuoteService.build(
        catalog=PricingCatalog({s.item_id: s for s in ITEMS}),
        guardrails=GuardrailSet(),
        policy="static",
        quote_log=QuoteStore(db),
        audit=AuditStore(db),
        buffer_quotes=False,
        **kwargs,
    )
    try:
        yield service
    finally:
        service.close()
        db.close()


def ctx_at(at: datetime = AT, **kwargs: Any) -> PublicContext:
    """A public context at ``at``."""
    return PublicContext(at=at, **kwargs)
