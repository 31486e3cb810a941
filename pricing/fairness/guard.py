"""The fairness guard: every price quote leaves through :class:`FairQuoteService` (rule G2).

How it works, per request (differential execution):

1. **Fair price first, in a clean room.** For each item the guard needs the shopper-free price
   of the current price epoch and public context. It is computed once per (item, epoch, public
   context) on a dedicated thread, in an empty ``contextvars`` context, with the public context
   rebuilt as a plain :class:`~pricing.context.PublicContext`: no request scope, no request
   object, no shopper anywhere on that thread's stack. The result is pinned for the epoch, so
   every shopper in it is served the same list price (rule G3) and a later request cannot
   poison it (:mod:`pricing.fairness.fair_prices`).
2. **Shopper-scoped run as a detector.** The engine's policy is then asked again, uncached,
   in the caller's own scope: the shopper in the request scope, the request's context object
   as given, the caller's stack (:mod:`pricing.fairness.detector`). A policy that reads the
   shopper through any side channel (the context variable, the request object, the call
   stack, a global or a cache it filled earlier) proposes a different price here.
3. **Compare.** On any difference the guard serves the fair price, writes a ``g2_violation``
   to the hash-chained audit log, increments ``fairshelf_fairness_violations_total`` and
   quarantines the policy: from its next clean-room computation on, its items are served at
   their public base price, because it may carry a shopper into the clean room through a
   global or a cache.
4. **Published programs last.** Discount programs the shopper qualifies for are applied to the
   fair price, reduce-only, each as its own line (rule G4).
5. **Log.** Every quote is handed to the quote log before it is returned (explainable at once,
   stored by group commit), so it can always be explained (rule G6) and audited (G3, G4).

Serving code imports this service only and gets its engine inside :meth:`FairQuoteService.build`;
it never reaches the engine or a policy (a test parses every serving module to hold that line).
The service also *seals* its engine with the guard's capability
(:mod:`pricing.fairness.capability`): from then on the engine prices only for a caller that
presents that object, which only this package holds, so a reference to the serving engine is
not a way around the guard.

Steady state costs no thread hand-off for items shoppers keep being quoted:
:class:`~pricing.fairness.epoch_warmer.EpochWarmer` pins, in the clean room just after each
epoch starts, the fair prices of the items quoted in the epoch before, and a request whose
items are all pinned reads them directly. An item first quoted in an epoch waits once for the
clean room.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from fairshelf.errors import PolicyRejected
from pricing.catalog import PricingCatalog
from pricing.context import PublicContext
from pricing.engine import PricingEngine
from pricing.epochs import EpochClock
from pricing.fairness.caller_context import DayPseudonyms, with_running_promotions
from pricing.fairness.capability import _GUARD_CAPABILITY
from pricing.fairness.change_audit import audit_policy_rejected
from pricing.fairness.clean_room import (
    QUARANTINE_REASON,
    public_only,
    validate_items,
)
from pricing.fairness.detector import ShopperScopedDetector
from pricing.fairness.epoch_warmer import EpochWarmer
from pricing.fairness.explain import Explanation, explain_quote
from pricing.fairness.fair_prices import FairPriceBook
from pricing.fairness.guardrail_preview import GuardrailPreview, preview_guardrails
from pricing.fairness.metrics import QUOTES_GUARDED
from pricing.fairness.ports import AuditSink, QuoteLog
from pricing.fairness.programs import ProgramBook
from pricing.fairness.quote_writer import BufferedQuoteLog
from pricing.fairness.quotes import (
    GUARD_BLOCKED,
    GUARD_OK,
    GUARD_QUARANTINED,
    Quote,
    context_key_text,
)
from pricing.fairness.shopper import (
    ANONYMOUS,
    REQUEST_SCOPE,
    RequestScope,
    Shopper,
    group_of,
)
from pricing.fairness.violations import (
    record_g2_violation,
    record_quarantine,
    record_refused_line,
)
from pricing.guardrails import GuardrailSet
from pricing.policies.registry import load_policy
from pricing.price_history import PriceHistory
from pricing.promotions import PromotionBook

_QUARANTINED = (QUARANTINE_REASON,)


class FairQuoteService:
    """The one way to get a price quote: engine + fairness guard + programs + logs.

    Parameters
    ----------
    engine:
        A fresh pricing engine (``pricing.engine.PricingEngine``) that has not priced
        anything yet; the service seals it, so that only the guard can call it afterwards.
    quote_log:
        Where quotes are kept (``serving.store.quote_store.QuoteStore``).
    audit:
        The hash-chained audit log (``serving.store.audit_store.AuditStore``).
    programs:
        The published discount programs.
    category_of:
        item_id -> category path, for programs limited to categories; by default the
        engine's catalogue.
    buffer_quotes:
        Store quotes through a writer thread with group commit (see
        :mod:`pricing.fairness.quote_writer`); False stores each request's quotes before
        returning them.
    quote_batch_seconds:
        How long the writer gathers quotes before committing a small batch (its ``linger``):
        a sealed quote log adds one audit record per batch.
    promotions:
        The published promotions: every quote carries those running at its time, whatever
        the request names (:mod:`pricing.fairness.caller_context`).
    pseudonym_key:
        Key of the day-scoped shopper pseudonym logged with each quote (for the region
        hopping audit); a random key by default (pseudonyms then differ between processes).

    Raises
    ------
    FailedPrecondition
        The engine is already sealed by another guard, or has priced outside the guard.
    """

    def __init__(
        self,
        engine: PricingEngine,
        *,
        quote_log: QuoteLog,
        audit: AuditSink,
        programs: ProgramBook | None = None,
        category_of: Callable[[str], str] | None = None,
        buffer_quotes: bool = True,
        quote_batch_seconds: float = 0.02,
        promotions: PromotionBook | None = None,
        pseudonym_key: bytes | None = None,
    ) -> None:
        engine.seal(_GUARD_CAPABILITY)
        self._promotions = promotions or PromotionBook()
        self._refs = DayPseudonyms(pseudonym_key or secrets.token_bytes(32))
        self._engine = engine
        self._detector = ShopperScopedDetector(engine)
        self._buffer = (
            BufferedQuoteLog(quote_log, linger=quote_batch_seconds) if buffer_quotes else None
        )
        self._quotes: QuoteLog = self._buffer or quote_log
        self._audit = audit
        self._programs = programs or ProgramBook()
        # One clock for both: the guard's epoch is the engine's epoch.
        self._epochs = engine.clock
        self._category_of = category_of or (lambda item_id: engine.catalog.get(item_id).category)
        self._book = FairPriceBook(engine)
        self._ctx_texts: dict[tuple[Any, ...], str] = {}
        self._starts: dict[int, datetime] = {}
        self._warmer: EpochWarmer | None = None
        # Items quoted since the last warm-up: the next epoch warms these, not the catalogue.
        # Requests add to it from several threads while the warmer swaps it out.
        self._demanded: set[str] = set()
        self._demand_lock = threading.Lock()

    @classmethod
    def build(
        cls,
        *,
        catalog: PricingCatalog,
        guardrails: GuardrailSet,
        policy: str,
        quote_log: QuoteLog,
        audit: AuditSink,
        policy_params: Mapping[str, Any] | None = None,
        history: PriceHistory | None = None,
        clock: EpochClock | None = None,
        programs: ProgramBook | None = None,
        buffer_quotes: bool = True,
        warm_each_epoch: bool = True,
        quote_batch_seconds: float = 0.02,
        promotions: PromotionBook | None = None,
        pseudonym_key: bytes | None = None,
    ) -> FairQuoteService:
        """Build the engine and its guard together: the serving layer's only entry to pricing.

        Parameters
        ----------
        catalog, guardrails, history, clock:
            As for ``pricing.engine.PricingEngine``.
        policy, policy_params:
            A registered policy name (``pricing.policies.registry``) and its parameters; the
            registry refuses shopper-level inputs (rule G1).
        quote_log, audit, programs, buffer_quotes, quote_batch_seconds, promotions,
        pseudonym_key:
            As for the constructor.
        warm_each_epoch:
            Start an :class:`~pricing.fairness.epoch_warmer.EpochWarmer` that pins, just after
            each epoch starts, the fair prices (default public context) of the items quoted
            in the epoch before (:meth:`warm_demanded`).

        Raises
        ------
        PolicyRejected
            The policy declares a non-public input.
        NotFound
            No policy has that name.
        """
        engine = PricingEngine(
            catalog,
            guardrails,
            load_policy(policy, **dict(policy_params or {})),
            history=history,
            clock=clock,
        )
        service = cls(
            engine,
            quote_log=quote_log,
            audit=audit,
            programs=programs,
            buffer_quotes=buffer_quotes,
            quote_batch_seconds=quote_batch_seconds,
            promotions=promotions,
            pseudonym_key=pseudonym_key,
        )
        if warm_each_epoch:
            service._warmer = EpochWarmer(
                service.clock, lambda now: service.warm_demanded(PublicContext(at=now))
            ).start()
        return service

    @property
    def catalog(self) -> PricingCatalog:
        """The catalogue the engine prices."""
        return self._engine.catalog

    @property
    def guardrails(self) -> GuardrailSet:
        """The guardrail set in force."""
        return self._engine.guardrails

    @property
    def clock(self) -> EpochClock:
        """The price-epoch clock."""
        return self._epochs

    def set_catalog(self, catalog: PricingCatalog) -> None:
        """Swap the catalogue (new bundle); prices already fixed this epoch stand."""
        self._engine.set_catalog(catalog)

    def set_guardrails(self, guardrails: GuardrailSet) -> None:
        """Swap the guardrail set; prices already fixed this epoch stand."""
        self._engine.set_guardrails(guardrails)

    def set_policy(self, policy: str, **params: Any) -> None:
        """Load a registered policy by name (rule G1 checked) and put it in charge.

        Raises
        ------
        PolicyRejected
            The policy declares a non-public input; the refusal is also audited.
        NotFound
            No policy has that name.
        """
        try:
            self._engine.set_policy(load_policy(policy, **params))
        except PolicyRejected as exc:
            audit_policy_rejected(self._audit, policy=policy, message=str(exc))
            raise

    @property
    def promotions(self) -> PromotionBook:
        """The published promotions in force."""
        return self._promotions

    def set_promotions(self, book: PromotionBook) -> None:
        """Put a new version of the published promotions in force (from the next quote)."""
        self._promotions = book

    @property
    def quote_log(self) -> QuoteLog:
        """The quote log as the guard writes it (pending quotes included; iterating flushes)."""
        return self._quotes

    @property
    def audit(self) -> AuditSink:
        """The audit log the guard appends to."""
        return self._audit

    @property
    def programs(self) -> ProgramBook:
        """The published discount programs."""
        return self._programs

    def epoch_of(self, ctx: PublicContext) -> int:
        """The price epoch ``ctx.at`` falls in."""
        return self._epochs.index(ctx.at)

    def quote(
        self,
        item_ids: Sequence[str],
        ctx: PublicContext,
        shopper: Shopper | None = None,
        *,
        request_id: str = "",
    ) -> list[Quote]:
        """Quote ``item_ids`` for ``shopper``: the fair price plus published programs.

        Parameters
        ----------
        item_ids:
            Items to price (1..1000, no duplicates).
        ctx:
            The public context of the request.
        shopper:
            The shopper asking; None for an anonymous visitor.
        request_id:
            The request id, placed in the request scope.

        Returns
        -------
        list[Quote]
            One quote per item, in request order, already in the quote log.

        Raises
        ------
        InvalidArgument
            On an empty, oversized or duplicated item list, a region finer than a country or
            state (a promotion never published: ``NotFound``; one not running:
            ``FailedPrecondition``; field ``promotions``).
        PolicyRejected
            When the engine's policy declares a non-public input (rule G1, checked again).
        NotFound
            From the engine, for an unknown item.
        """
        items = validate_items(item_ids)
        who = shopper or ANONYMOUS
        ctx = with_running_promotions(self._promotions, ctx)
        clean_ctx = public_only(ctx)
        epoch = self.epoch_of(clean_ctx)
        ckey = clean_ctx.key()
        fair = self._book.fair(items, clean_ctx, epoch, ckey)
        with self._demand_lock:
            self._demanded.update(items)
        catalog, guardrails = self._engine.catalog, self._engine.guardrails
        seen = self._shopper_scoped(items, ctx, epoch, who, request_id)
        group = group_of(who)
        ctx_text = self._ctx_texts.get(ckey)
        if ctx_text is None:
            if len(self._ctx_texts) > 10_000:
                self._ctx_texts.clear()
            ctx_text = self._ctx_texts[ckey] = context_key_text(clean_ctx)
        now = clean_ctx.at.isoformat(timespec="microseconds")
        ref_of_day = self._refs.ref(who.shopper_id, clean_ctx.at)
        # Time-ordered ids append at the end of the quote log's index instead of splitting
        # pages all over it; the random part (64 bits per quote, drawn for the whole request
        # at once) keeps them unguessable.
        n = len(items)
        prefix = f"q_{time.time_ns() // 1000:013x}"
        # From the OS generator (an explanation names the shopper's audit group, so ids must
        # not be predictable from ids seen before); one read per request costs about as much as
        # a seeded Mersenne Twister's draw (2.3 µs for 20 quotes).
        rand = secrets.token_hex(8 * n)
        quotes: list[Quote] = []
        violations: list[tuple[Quote, float | None, str]] = []
        if isinstance(seen, str):
            # The shopper-scoped run failed: every item is blocked unless its price is held.
            proposed: Sequence[float | None] = [None] * n
            seen_name = seen_version = ""
        else:
            proposed, seen_name, seen_version = seen
        # Programs the shopper can qualify for at all, decided once per request: for most
        # shoppers there are none and the items skip the program book entirely.
        eligible = self._programs.eligible(who)
        apply_programs = self._programs.apply_eligible
        category_of = self._category_of
        new_quote = tuple.__new__
        status_ok = GUARD_OK
        for k in range(n):
            ref = fair[k]
            got = proposed[k]
            # A quarantined policy's price is not served at all, so there is nothing to compare.
            held = ref.reason_codes == _QUARANTINED
            # A policy, catalogue or guardrail set swapped in mid-epoch: the pinned price
            # stands for the epoch (rule G3), and the policy now sees other inputs, so its
            # proposal cannot be compared with the pinned one.
            pinned = ref.config
            if held or (pinned and (pinned[0] is not catalog or pinned[1] is not guardrails)):
                blocked = False
            elif got is None:
                blocked = True  # the shopper-scoped run failed
            else:
                # The same policy (name and version) proposing another price; equal prices
                # compare as equal values or as the same object (as a tuple comparison does).
                expected = ref.proposed_price
                if expected is None:
                    expected = ref.final_price
                blocked = (
                    seen_name == ref.policy_name
                    and seen_version == ref.policy_version
                    and got is not expected
                    and got != expected
                )
            item_id = items[k]
            if eligible:
                outcome = apply_programs(ref.final_price, category_of(item_id), who, eligible)
                lines, final_price, refused_lines = outcome
            else:
                lines, final_price, refused_lines = (), ref.final_price, ()
            # Positional, in Quote's field order: keyword construction costs twice as much,
            # once per quoted item.
            quote = new_quote(
                Quote,
                (
                    prefix + rand[16 * k : 16 * k + 16],
                    item_id,
                    epoch,
                    ctx_text,
                    now,
                    ref.final_price,
                    final_price,
                    ref.base_price,
                    ref.adjustment,
                    ref.reason_codes,
                    ref.policy_name,
                    ref.policy_version,
                    ref.inputs,
                    ref.guardrail_scope,
                    ref.guardrail_version,
                    lines,
                    group,
                    GUARD_BLOCKED if blocked else (GUARD_QUARANTINED if held else status_ok),
                    got if blocked else None,
                    ref_of_day,
                ),
            )
            quotes.append(quote)
            if blocked:
                reason = seen if isinstance(seen, str) else "price differs"
                violations.append((quote, quote.blocked_price, reason))
            for refused in refused_lines:
                record_refused_line(
                    self._audit, quote, refused.program_id, refused.attempted_amount
                )
        # Logged before returned: a quote id the shopper holds can always be explained.
        self._quotes.add(quotes)
        for quote, blocked_price, reason in violations:
            record_g2_violation(self._audit, quote, blocked_price, reason, group)
            self._quarantine(quote)
        QUOTES_GUARDED.inc(len(quotes))
        return quotes

    def warm(self, ctx: PublicContext, item_ids: Sequence[str] | None = None) -> int:
        """Pin the fair prices of the epoch of ``ctx`` ahead of requests (clean room).

        Meant to run just after an epoch starts (the warmer started by :meth:`build` does),
        so that requests of the epoch find their items pinned. It serves nothing and
        compares nothing: the prices are the ones the first request would have pinned.

        Parameters
        ----------
        ctx:
            The public context to price in (its public fields only are used).
        item_ids:
            Items to warm; the whole catalogue by default.

        Returns
        -------
        int
            Number of items newly pinned.

        Raises
        ------
        InvalidArgument
            The region is finer than a country or state.
        PolicyRejected
            A fresh decision names a non-public input (rule G1).
        """
        clean_ctx = public_only(with_running_promotions(self._promotions, ctx))
        ids = None if item_ids is None else [str(i) for i in item_ids]
        return self._book.warm(clean_ctx, self.epoch_of(clean_ctx), clean_ctx.key(), ids)

    def warm_demanded(self, ctx: PublicContext) -> int:
        """Warm (:meth:`warm`) the items quoted since the last call, for the epoch of ``ctx``.

        The epoch warmer calls this just after each boundary, so the work follows the items
        shoppers are actually quoted rather than the catalogue: a store quoting a few thousand
        of 100,000 items warms those few thousand (tens of microseconds of clean-room time
        each), and a server that only recommends warms nothing. An item first quoted in an
        epoch is decided on its first request, as any item not warmed is, and warmed from the
        next epoch on.

        Returns
        -------
        int
            Number of items newly pinned.
        """
        with self._demand_lock:
            demanded, self._demanded = self._demanded, set()
        catalog = self._engine.catalog
        # Items gone with a new bundle would fail the whole warm-up as unknown.
        ids = sorted(i for i in demanded if i in catalog)
        try:
            return self.warm(ctx, ids) if ids else 0
        except Exception:
            # Not warmed (the store was down, the catalogue changed under it): try them again
            # at the next boundary rather than forget what shoppers asked for.
            with self._demand_lock:
                self._demanded |= demanded
            raise

    def explain(self, quote_id: str) -> Explanation:
        """Explain a served quote (rule G6): inputs, policy, guardrail, programs.

        Raises
        ------
        NotFound
            When no quote has ``quote_id``.
        """
        quote = self._quotes.get(quote_id)
        return explain_quote(quote, self._programs)

    def preview_guardrails(
        self, proposed: GuardrailSet, item_ids: Sequence[str], at: datetime
    ) -> GuardrailPreview:
        """What ``proposed`` would do to the prices of ``item_ids`` in the epoch of ``at``: a
        dry run of the engine that records, pins and serves nothing (see
        :mod:`pricing.fairness.guardrail_preview`)."""
        return preview_guardrails(self._engine, _GUARD_CAPABILITY, proposed, item_ids, at)

    def flush(self) -> None:
        """Wait until every quote served so far is in the quote log."""
        if self._buffer is not None:
            self._buffer.flush()

    def close(self) -> None:
        """Store pending quotes and stop the guard's threads."""
        if self._warmer is not None:
            self._warmer.stop()
        if self._buffer is not None:
            self._buffer.close()
        self._book.close()

    # -- internals -------------------------------------------------------------------------

    def _shopper_scoped(
        self,
        items: list[str],
        ctx: PublicContext,
        epoch: int,
        shopper: Shopper,
        request_id: str,
    ) -> tuple[list[float], str, str] | str:
        token = REQUEST_SCOPE.set(RequestScope(request_id=request_id, shopper=shopper))
        try:
            start = self._starts.get(epoch)
            if start is None:
                if len(self._starts) > 1000:
                    self._starts.clear()
                start = self._starts[epoch] = self._epochs.start(epoch)
            return self._detector.proposals(items, ctx, epoch, start)
        except Exception as exc:
            # The clean room priced these items; failing only in the shopper's scope means the
            # outcome depended on the shopper (e.g. refusing to quote some shoppers).
            return f"engine failed only in the shopper's scope: {type(exc).__name__}: {exc}"
        finally:
            REQUEST_SCOPE.reset(token)

    def _quarantine(self, quote: Quote) -> None:
        if self._book.quarantine(quote.policy_name, quote.policy_version):
            record_quarantine(self._audit, quote)

    @property
    def quarantined(self) -> frozenset[tuple[str, str]]:
        """(name, version) of policies caught pricing by shopper."""
        return self._book.quarantined
