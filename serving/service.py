"""THE service object: every operation of the API, once, for both transports.

The gRPC server and the HTTP app only translate messages to calls on :class:`FairshelfService`
and back. Here each call is authenticated and authorised, bound to its request id, timed into
``fairshelf_request_seconds{operation, transport}``, and answered by composing the recommender
of the serving bundle, the fairness guard (the only way to a price), and the stores. Domain
errors propagate to the transports, which map them through :mod:`serving.errors`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from fairshelf.errors import InvalidArgument, ModelUnavailable
from pricing.context import PublicContext
from pricing.fairness.guard import FairQuoteService
from pricing.fairness.optout_audit import audit_optout_change
from pricing.fairness.ports import AuditSink
from pricing.fairness.quotes import Quote
from pricing.fairness.shopper import Shopper
from recsys.types import Filters, RecommendRequest, RequestContext, check_id, check_k
from serving.api_models import (
    AuditReportOut,
    DeleteGuardrailsIn,
    EffectiveGuardrailOut,
    ExperimentReportOut,
    ExplainQuoteOut,
    GuardrailChangeOut,
    GuardrailHistoryOut,
    GuardrailsOut,
    LogEventsIn,
    LogEventsOut,
    ModelInfoOut,
    PersonalizationIn,
    PersonalizationOut,
    PutGuardrailsIn,
    QuotePricesIn,
    QuoteReceiptOut,
    QuotesResult,
    RecommendedItemOut,
    RecommendIn,
    RecommendResult,
    RollbackGuardrailsIn,
    SimilarItemsOut,
)
from serving.api_promotions import (
    EndPromotionIn,
    PromotionChangeOut,
    PromotionsOut,
    PublishPromotionIn,
)
from serving.auth import Authenticator
from serving.errors import INTERNAL, status_for
from serving.exposure_log import ExposureLog
from serving.logging import bind_request, get_logger
from serving.metrics import Metrics
from serving.reload import LoadedModel, ModelHolder
from serving.rfc3339 import parse_rfc3339
from serving.settings import Role, Settings
from serving.shopper_facts import ShopperFacts, coarse_device
from serving.store.audit_store import AuditStore
from serving.store.events_store import Event, EventsStore, make_events
from serving.store.optouts_store import OptOutsStore
from serving.store.outage import PersonalReads, database_errors_unavailable

T = TypeVar("T")
log = get_logger("fairshelf.service")

DEFAULT_K = 20


@dataclass(frozen=True)
class CallContext:
    """Who is calling, over what, under which request id (built by each transport).

    ``role`` is set instead of a key by a face that authenticated the caller itself (the
    console's signed session); the operation is still authorised against it here.
    """

    api_key: str | None
    request_id: str
    transport: str
    role: Role | None = None


class GuardrailsPort(Protocol):
    """What the service needs from the guardrail store (``serving.store.guardrails_store``)."""

    def get_out(self, scope: str) -> GuardrailsOut:
        """The guardrails of ``scope``."""
        ...

    def put_out(self, scope: str, body: PutGuardrailsIn, actor: str) -> GuardrailsOut:
        """Validate, version, audit and store new guardrails for ``scope``."""
        ...

    def rollback_out(self, body: RollbackGuardrailsIn, actor: str) -> GuardrailChangeOut:
        """Restore an older version's content as a new, audited version."""
        ...

    def delete_out(
        self, scope: str, body: DeleteGuardrailsIn, actor: str
    ) -> GuardrailChangeOut: ...

    def history_out(self, limit: int | None) -> GuardrailHistoryOut:
        """The latest changes, newest first."""
        ...

    def effective_out(self, item_id: str) -> EffectiveGuardrailOut:
        """The guardrail in force for one item."""
        ...


class PromotionsPort(Protocol):
    """What the service needs for published promotions (``serving.pricing_wiring``)."""

    def list_promotions_out(self) -> PromotionsOut: ...

    def publish_promotion_out(
        self, name: str, body: PublishPromotionIn, actor: str
    ) -> PromotionChangeOut: ...

    def end_promotion_out(
        self, name: str, body: EndPromotionIn, actor: str
    ) -> PromotionChangeOut: ...


AuditReporter = Callable[[datetime | None, datetime | None], dict[str, Any]]
ExperimentReporter = Callable[[str, datetime | None, datetime | None], dict[str, Any]]


def _parse_time(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    return parse_rfc3339(value, field)


class FairshelfService:
    """Every API operation.

    Parameters
    ----------
    settings:
        The server settings.
    holder:
        Holds the serving model (swapped by the bundle watcher).
    events:
        The event log.
    optouts:
        Personalization choices.
    metrics:
        Where latencies and counters go.
    quotes:
        The fairness guard; ``None`` when pricing is not configured (pricing calls then answer
        ``UNAVAILABLE``).
    guardrails:
        The guardrail store adapter, or ``None``.
    audit_report:
        Builds the fairness audit report for a time window, or ``None``.
    receipts:
        Builds a quote's receipt (inclusion proof, batch record, checkpoint), or ``None``.
    audit:
        The hash-chained audit log: personalization changes are recorded there (under a keyed
        pseudonym of the shopper), or ``None`` to record nothing (benchmarks).
    exposures:
        Where each Recommend answer is logged for experiment readouts, or ``None``.
    experiment_report:
        Builds the readout of an experiment for a time window, or ``None``.
    promotions:
        Published promotions (read, publish, end), or ``None`` when pricing is off.
    """

    def __init__(
        self,
        settings: Settings,
        holder: ModelHolder,
        events: EventsStore,
        optouts: OptOutsStore,
        metrics: Metrics,
        *,
        quotes: FairQuoteService | None = None,
        guardrails: GuardrailsPort | None = None,
        audit_report: AuditReporter | None = None,
        audit: AuditStore | None = None,
        receipts: Callable[[str], dict[str, Any]] | None = None,
        exposures: ExposureLog | None = None,
        experiment_report: ExperimentReporter | None = None,
        promotions: PromotionsPort | None = None,
    ) -> None:
        self.settings = settings
        self.promotions = promotions
        self.holder = holder
        self.events = events
        self.optouts = optouts
        self.metrics = metrics
        self.quotes = quotes
        self.guardrails = guardrails
        self.audit_report_fn = audit_report
        self.audit = audit
        self.receipts_fn = receipts
        self.exposures = exposures
        self.experiment_report_fn = experiment_report
        self.experiment_name = settings.recsys.experiment.name
        self.shopper_facts = ShopperFacts()
        self.personal_reads = PersonalReads(optouts, events)
        self.auth = Authenticator(settings.api_keys, enabled=settings.auth_enabled)
        if settings.pseudonym_key is not None:
            self.pseudonym_key = settings.pseudonym_key.get_secret_value().encode()
        else:
            # Still pseudonymous, but pseudonyms then differ between processes and restarts.
            self.pseudonym_key = secrets.token_bytes(32)
            if audit is not None:
                log.warning("pseudonym_key_unset", effect="random key for this process")

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, operation: str, call: CallContext, fn: Callable[[Role], T]) -> T:
        bind_request(call.request_id)
        started = time.perf_counter()
        code = "OK"
        try:
            if call.role is None:
                role = self.auth.check(call.api_key, operation)
            else:
                role = call.role
                self.auth.authorize(role, operation)
            with database_errors_unavailable():
                return fn(role)
        except Exception as exc:
            status = status_for(exc)
            code = status.code_name
            if status is INTERNAL:
                log.exception("request_failed", operation=operation, transport=call.transport)
            else:
                log.info(
                    "request_rejected",
                    operation=operation,
                    transport=call.transport,
                    code=code,
                    error=str(exc),
                )
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(operation, call.transport, code, elapsed)
            log.debug(
                "request",
                operation=operation,
                transport=call.transport,
                code=code,
                ms=round(elapsed * 1000, 3),
            )

    def perform(self, operation: str, call: CallContext, fn: Callable[[Role], T]) -> T:
        """Run ``fn`` as ``operation``: authorised, timed and logged like every API call (for
        the console's reads that have no API operation of their own)."""
        return self._call(operation, call, fn)

    def _require_quotes(self) -> FairQuoteService:
        if self.quotes is None:
            raise ModelUnavailable("pricing is not configured on this server")
        return self.quotes

    def _shopper(
        self,
        user_id: str,
        *,
        model: LoadedModel | None = None,
        recent: Sequence[Event] | None = None,
        device: str | None = None,
        member: bool = False,
        coupon_codes: Sequence[str] = (),
        orders: int = 0,
        tenure_days: float = 0.0,
    ) -> Shopper:
        """The shopper of a quote, with tenure and orders the server knows of.

        The storefront's own figures are kept when larger (it may know of orders placed
        elsewhere); the server's facts fill in what it left out, so a loyal shopper is logged
        in the loyal audit group even when the storefront sends only an id. ``recent`` is
        passed when the caller has already read the shopper's events since the bundle.
        """
        if user_id:
            model = model if model is not None else self.holder.current
            if model is not None:
                if recent is None:
                    recent = self.events.recent_for_user(user_id, since=model.trained_until)
                known = self.shopper_facts.history(model, user_id, recent)
                orders = max(orders, known.orders)
                tenure_days = max(tenure_days, known.tenure_days(datetime.now(UTC)))
        return Shopper(
            shopper_id=user_id,
            tenure_days=tenure_days,
            orders=orders,
            device=coarse_device(device),
            member=member,
            coupon_codes=frozenset(coupon_codes),
        )

    def _quote(
        self,
        item_ids: Sequence[str],
        shopper: Shopper | None,
        request_id: str,
        region: str | None = None,
        promotions: Sequence[str] = (),
    ) -> list[Quote]:
        service = self._require_quotes()
        ctx = PublicContext(at=datetime.now(UTC), region=region, promotions=tuple(promotions))
        return service.quote(list(item_ids), ctx, shopper, request_id=request_id)

    # -- recommendations --------------------------------------------------------------------

    def recommend(self, call: CallContext, body: RecommendIn) -> RecommendResult:
        """Ranked items for one shopper (SPEC §5): trained vector, fold-in or trending."""
        return self._call("Recommend", call, lambda _role: self._recommend(call, body))

    def _recommend(self, call: CallContext, body: RecommendIn) -> RecommendResult:
        started = time.perf_counter()
        request = RecommendRequest(
            user_id=body.user_id,
            k=DEFAULT_K if body.k is None else body.k,
            context=RequestContext(
                surface=body.context.surface or "home",
                category=body.context.category or None,
                item_id=body.context.item_id or None,
            ),
            filters=Filters(
                exclude_purchased=body.filters.exclude_purchased,
                in_stock_only=body.filters.in_stock_only,
                include_categories=tuple(body.filters.include_categories),
                exclude_categories=tuple(body.filters.exclude_categories),
                min_price=body.filters.min_price,
                max_price=body.filters.max_price,
            ),
            personalized=body.personalized is not False,
        )
        model = self.holder.require()
        # Events since the bundle's training data: a purchase logged a moment ago counts.
        # With the database down: a non-personalized list, so no opt-out is ever broken.
        opted_out, recent = self.personal_reads.read(request.user_id, model.trained_until)
        result = model.recommender.recommend(request, recent, opted_out=opted_out)
        self.metrics.recommendations_total.labels(result.strategy).inc()
        quotes: dict[str, Quote] = {}
        if body.include_prices and result.items:
            shopper = self._shopper(request.user_id, model=model, recent=recent, device=body.device)
            ids = [it.item_id for it in result.items]
            quotes = {q.item_id: q for q in self._quote(ids, shopper, call.request_id)}
        if self.exposures is not None:
            self.exposures.record_answer(
                call.request_id, self.experiment_name, request, result, started
            )
        return RecommendResult(
            items=result.items,
            quotes=quotes,
            model_version=result.model_version,
            variant=result.variant,
            personalized=result.personalized,
            strategy=result.strategy,
            request_id=call.request_id,
            currency=self.settings.currency,
        )

    def similar_items(self, call: CallContext, item_id: str, k: int | None) -> SimilarItemsOut:
        """Items similar to ``item_id`` (product page)."""

        def run(_role: Role) -> SimilarItemsOut:
            check_id(item_id, "item_id")
            kk = check_k(DEFAULT_K if k is None else k)
            model = self.holder.require()
            items = model.recommender.similar_items(item_id, kk)
            return SimilarItemsOut(
                items=[
                    RecommendedItemOut(
                        item_id=str(i.item_id), score=float(i.score), reason=i.reason
                    )
                    for i in items
                ],
                model_version=model.bundle_id,
                request_id=call.request_id,
            )

        return self._call("SimilarItems", call, run)

    # -- events and shoppers ----------------------------------------------------------------

    def log_events(self, call: CallContext, body: LogEventsIn) -> LogEventsOut:
        """Validate and append events durably, idempotent by ``event_id``."""

        def run(_role: Role) -> LogEventsOut:
            events = make_events([e.model_dump(exclude_none=True) for e in body.events])
            result = self.events.append(events)
            for ev in events:
                self.metrics.events_total.labels(ev.event_type).inc()
            if result.duplicates:
                self.metrics.events_duplicate_total.inc(result.duplicates)
            if result.accepted:
                self.metrics.events_last_ingested.set_to_current_time()
            return LogEventsOut(
                accepted=result.accepted, duplicates=result.duplicates, request_id=call.request_id
            )

        return self._call("LogEvents", call, run)

    def set_personalization(
        self, call: CallContext, user_id: str, body: PersonalizationIn
    ) -> PersonalizationOut:
        """Store a shopper's personalization choice; every later call honours it."""

        def run(_role: Role) -> PersonalizationOut:
            check_id(user_id, "user_id")
            if body.enabled is None:
                raise InvalidArgument("enabled is required (true or false)", field="enabled")
            enabled = body.enabled

            def record(chain: AuditSink) -> None:
                # Rule G5 / PIPL art. 24: the log proves when the non-personal option took
                # effect; a repeat of the stored choice changes nothing and is not recorded.
                audit_optout_change(
                    chain,
                    shopper_id=user_id,
                    personalized=enabled,
                    source=f"api:{call.transport}",
                    pseudonym_key=self.pseudonym_key,
                )

            choice = self.optouts.set(user_id, enabled, audit=self.audit, on_change=record)
            log.info("personalization_set", enabled=choice.enabled)
            assert choice.updated_at is not None
            return PersonalizationOut(
                user_id=choice.user_id,
                enabled=choice.enabled,
                updated_at=choice.updated_at.isoformat(),
            )

        return self._call("SetPersonalization", call, run)

    # -- pricing ----------------------------------------------------------------------------

    def quote_prices(self, call: CallContext, body: QuotePricesIn) -> QuotesResult:
        """Quotes through the fairness guard: the same price for everyone in an epoch."""

        def run(_role: Role) -> QuotesResult:
            shopper = None
            if body.shopper is not None:
                s = body.shopper
                shopper = self._shopper(
                    s.user_id,
                    device=s.device,
                    member=s.member,
                    coupon_codes=s.coupon_codes,
                    orders=s.orders,
                    tenure_days=s.tenure_days,
                )
            quotes = self._quote(
                body.item_ids, shopper, call.request_id, body.region or None, body.promotions
            )
            return QuotesResult(tuple(quotes), self.settings.currency, call.request_id)

        return self._call("QuotePrices", call, run)

    def explain_quote(self, call: CallContext, quote_id: str) -> ExplainQuoteOut:
        """Which inputs, rule and guardrail produced a quote (rule G6)."""

        def run(_role: Role) -> ExplainQuoteOut:
            check_id(quote_id, "quote_id")
            explanation = self._require_quotes().explain(quote_id)
            return ExplainQuoteOut(quote_id=quote_id, explanation=explanation.to_json())

        return self._call("ExplainQuote", call, run)

    def quote_receipt(self, call: CallContext, quote_id: str) -> QuoteReceiptOut:
        """The evidence that a quote is in the log (rule G5), checkable offline."""

        def run(_role: Role) -> QuoteReceiptOut:
            check_id(quote_id, "quote_id")
            if self.receipts_fn is None:
                raise ModelUnavailable("quote receipts are not configured on this server")
            return QuoteReceiptOut(quote_id=quote_id, receipt=self.receipts_fn(quote_id))

        return self._call("GetQuoteReceipt", call, run)

    # -- admin ------------------------------------------------------------------------------

    def _require_guardrails(self) -> GuardrailsPort:
        if self.guardrails is None:
            raise ModelUnavailable("guardrails are not configured on this server")
        return self.guardrails

    def get_guardrails(self, call: CallContext, scope: str) -> GuardrailsOut:
        """The guardrails of one scope."""
        return self._call(
            "GetGuardrails", call, lambda _r: self._require_guardrails().get_out(scope)
        )

    def put_guardrails(self, call: CallContext, scope: str, body: PutGuardrailsIn) -> GuardrailsOut:
        """Replace the guardrails of one scope (pricing or admin role; versioned, audited)."""

        def run(role: Role) -> GuardrailsOut:
            if not body.reason.strip():
                raise InvalidArgument("reason is required for a guardrail change", field="reason")
            return self._require_guardrails().put_out(scope, body, actor=f"role:{role.value}")

        return self._call("PutGuardrails", call, run)

    def rollback_guardrails(
        self, call: CallContext, body: RollbackGuardrailsIn
    ) -> GuardrailChangeOut:
        """Restore the content of an older guardrail version as a new version (pricing or
        admin role; audited; in force here at once, on other replicas within a poll)."""

        def run(role: Role) -> GuardrailChangeOut:
            if not body.reason.strip():
                raise InvalidArgument("reason is required for a guardrail change", field="reason")
            return self._require_guardrails().rollback_out(body, actor=f"role:{role.value}")

        return self._call("RollbackGuardrails", call, run)

    def delete_guardrails(
        self, call: CallContext, scope: str, body: DeleteGuardrailsIn
    ) -> GuardrailChangeOut:
        """Remove the rule of one scope, so its fields inherit from broader scopes again
        (pricing or admin role; versioned and audited like any change)."""

        def run(role: Role) -> GuardrailChangeOut:
            if not body.reason.strip():
                raise InvalidArgument("reason is required for a guardrail change", field="reason")
            return self._require_guardrails().delete_out(scope, body, actor=f"role:{role.value}")

        return self._call("DeleteGuardrails", call, run)

    def guardrail_history(self, call: CallContext, limit: int | None) -> GuardrailHistoryOut:
        """Who changed the guardrails, when, why and the field-level diff, newest first."""
        return self._call(
            "GetGuardrailHistory", call, lambda _r: self._require_guardrails().history_out(limit)
        )

    def effective_guardrail(self, call: CallContext, item_id: str) -> EffectiveGuardrailOut:
        """The guardrail in force for one item (narrowest scope wins, field by field)."""

        def run(_role: Role) -> EffectiveGuardrailOut:
            check_id(item_id, "item_id")
            return self._require_guardrails().effective_out(item_id)

        return self._call("GetEffectiveGuardrail", call, run)

    def _require_promotions(self) -> PromotionsPort:
        if self.promotions is None:
            raise ModelUnavailable("promotions are not configured on this server")
        return self.promotions

    def list_promotions(self, call: CallContext) -> PromotionsOut:
        """Every published promotion and the ones running now (every quote carries those)."""
        return self._call(
            "ListPromotions", call, lambda _r: self._require_promotions().list_promotions_out()
        )

    def publish_promotion(
        self, call: CallContext, name: str, body: PublishPromotionIn
    ) -> PromotionChangeOut:
        """Publish a time-boxed promotion (pricing or admin role; versioned, audited)."""

        def run(role: Role) -> PromotionChangeOut:
            port = self._require_promotions()
            return port.publish_promotion_out(name, body, actor=f"role:{role.value}")

        return self._call("PublishPromotion", call, run)

    def end_promotion(
        self, call: CallContext, name: str, body: EndPromotionIn
    ) -> PromotionChangeOut:
        """End a promotion now (pricing or admin role; versioned, audited)."""

        def run(role: Role) -> PromotionChangeOut:
            port = self._require_promotions()
            return port.end_promotion_out(name, body, actor=f"role:{role.value}")

        return self._call("EndPromotion", call, run)

    def audit_report(
        self, call: CallContext, since: str | None, until: str | None
    ) -> AuditReportOut:
        """The fairness audit for a time window."""

        def run(_role: Role) -> AuditReportOut:
            lo = _parse_time(since, "since")
            hi = _parse_time(until, "until")
            if self.audit_report_fn is None:
                raise ModelUnavailable("the fairness audit is not configured on this server")
            return AuditReportOut(report=self.audit_report_fn(lo, hi))

        return self._call("GetAuditReport", call, run)

    def experiment_report(
        self, call: CallContext, name: str, since: str | None, until: str | None
    ) -> ExperimentReportOut:
        """The readout of one experiment for a time window (admin and pricing roles)."""

        def run(_role: Role) -> ExperimentReportOut:
            check_id(name, "name")
            lo = _parse_time(since, "since")
            hi = _parse_time(until, "until")
            if self.experiment_report_fn is None:
                raise ModelUnavailable("experiment readouts are not configured on this server")
            return ExperimentReportOut(report=self.experiment_report_fn(name, lo, hi))

        return self._call("GetExperimentReport", call, run)

    def model_info(self, call: CallContext) -> ModelInfoOut:
        """The bundle being served."""

        def run(_role: Role) -> ModelInfoOut:
            model = self.holder.require()
            manifest = model.bundle.manifest
            data = manifest.model_dump(mode="json")
            return ModelInfoOut(
                model_version=model.bundle_id,
                bundle_path=str(model.path),
                trained_at=manifest.created_at.isoformat(),
                loaded_at=model.loaded_at.isoformat(),
                n_items=len(model.bundle.item_ids),
                n_users=len(model.bundle.user_ids),
                variants=sorted(self.settings.recsys.experiment.split),
                manifest={k: v for k, v in data.items() if k != "files"},
            )

        return self._call("GetModelInfo", call, run)

    # -- health -----------------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        """Whether the server can answer recommendations (a bundle is loaded)."""
        model = self.holder.current
        if model is None:
            return False, "no model bundle loaded"
        return True, model.bundle_id
