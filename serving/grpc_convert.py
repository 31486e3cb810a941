"""Proto messages <-> the service's request and response models.

Absent proto3 fields map to the same defaults the JSON models use, so a gRPC request and the
equivalent JSON body reach the service as equal models (and fail identically).
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import struct_pb2

from pricing.fairness.quotes import Quote
from proto.fairshelf.v1 import (
    admin_pb2,
    common_pb2,
    events_pb2,
    pricing_pb2,
    recommendations_pb2,
    shoppers_pb2,
)
from serving.api_models import (
    AuditReportOut,
    DeleteGuardrailsIn,
    EffectiveGuardrailOut,
    EventIn,
    ExplainQuoteOut,
    GuardrailChangeOut,
    GuardrailHistoryOut,
    GuardrailsOut,
    GuardrailValuesIn,
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
    ShopperIn,
    SimilarItemsOut,
    quote_json,
)


def _opt(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(data)
    return out


# -- requests -------------------------------------------------------------------------------


def recommend_in(req: recommendations_pb2.RecommendRequest) -> RecommendIn:
    """``RecommendRequest`` -> :class:`RecommendIn`."""
    # One validation of nested plain data rather than three model constructors, holding only
    # what the caller set: an absent message or field takes the model's default, which is what
    # its absence means (as a JSON body that leaves it out). The usual call, a shopper and k,
    # then skips building and checking the two nested parts field by field, half its cost.
    data: dict[str, Any] = {"user_id": req.user_id}
    if req.HasField("k"):
        data["k"] = req.k
    if req.HasField("context"):
        ctx = req.context
        data["context"] = {
            "surface": ctx.surface or "home",
            "category": ctx.category or None,
            "item_id": ctx.item_id or None,
        }
    if req.HasField("filters"):
        flt = req.filters
        data["filters"] = {
            "exclude_purchased": True
            if not flt.HasField("exclude_purchased")
            else flt.exclude_purchased,
            "in_stock_only": True if not flt.HasField("in_stock_only") else flt.in_stock_only,
            "include_categories": list(flt.include_categories),
            "exclude_categories": list(flt.exclude_categories),
            "min_price": _opt(flt, "min_price"),
            "max_price": _opt(flt, "max_price"),
        }
    if req.HasField("personalized"):
        data["personalized"] = req.personalized
    if req.device:
        data["device"] = req.device
    if req.include_prices:
        data["include_prices"] = True
    return RecommendIn.model_validate(data)


def quote_prices_in(req: pricing_pb2.QuotePricesRequest) -> QuotePricesIn:
    """``QuotePricesRequest`` -> :class:`QuotePricesIn`."""
    shopper = None
    if req.HasField("shopper"):
        s = req.shopper
        shopper = ShopperIn(
            user_id=s.user_id,
            member=s.member,
            coupon_codes=list(s.coupon_codes),
            orders=s.orders,
            tenure_days=s.tenure_days,
            device=s.device,
        )
    return QuotePricesIn(
        item_ids=list(req.item_ids),
        shopper=shopper,
        region=req.region or None,
        promotions=list(req.promotions),
    )


def log_events_in(req: events_pb2.LogEventsRequest) -> LogEventsIn:
    """``LogEventsRequest`` -> :class:`LogEventsIn` (empty strings mean absent)."""
    return LogEventsIn(
        events=[
            EventIn(
                event_id=e.event_id or None,
                user_id=e.user_id or None,
                item_id=e.item_id or None,
                event_type=e.event_type or None,
                timestamp=e.timestamp or None,
                quantity=_opt(e, "quantity"),
                unit_price=_opt(e, "unit_price"),
                session_id=e.session_id or None,
                channel=e.channel or None,
                region=e.region or None,
            )
            for e in req.events
        ]
    )


def personalization_in(req: shoppers_pb2.SetPersonalizationRequest) -> PersonalizationIn:
    """``SetPersonalizationRequest`` -> :class:`PersonalizationIn`."""
    return PersonalizationIn(enabled=_opt(req, "enabled"))


def guardrail_values_in(values: admin_pb2.GuardrailValues) -> GuardrailValuesIn:
    """``GuardrailValues`` -> :class:`GuardrailValuesIn`."""
    return GuardrailValuesIn(
        **{name: _opt(values, name) for name in GuardrailValuesIn.model_fields}
    )


def put_guardrails_in(req: admin_pb2.PutGuardrailsRequest) -> PutGuardrailsIn:
    """``PutGuardrailsRequest`` -> :class:`PutGuardrailsIn`."""
    return PutGuardrailsIn(
        values=guardrail_values_in(req.values),
        reason=req.reason,
        expected_version=_opt(req, "expected_version"),
    )


def rollback_guardrails_in(req: admin_pb2.RollbackGuardrailsRequest) -> RollbackGuardrailsIn:
    """``RollbackGuardrailsRequest`` -> :class:`RollbackGuardrailsIn`."""
    return RollbackGuardrailsIn(
        version=_opt(req, "version"),
        reason=req.reason,
        expected_version=_opt(req, "expected_version"),
    )


def delete_guardrails_in(req: admin_pb2.DeleteGuardrailsRequest) -> DeleteGuardrailsIn:
    """``DeleteGuardrailsRequest`` -> :class:`DeleteGuardrailsIn`."""
    return DeleteGuardrailsIn(reason=req.reason, expected_version=_opt(req, "expected_version"))


# -- responses ------------------------------------------------------------------------------


def quote_pb(q: Quote, currency: str) -> common_pb2.PriceQuote:
    """A guarded :class:`~pricing.fairness.quotes.Quote` -> ``PriceQuote``: the message's fields
    are the JSON quote's, so one function (:func:`serving.api_models.quote_json`) defines them."""
    return common_pb2.PriceQuote(**quote_json(q, currency))


def _item_pb(it: RecommendedItemOut) -> recommendations_pb2.RecommendedItem:
    # Similar items carry no quotes (SimilarItems does not price).
    return recommendations_pb2.RecommendedItem(item_id=it.item_id, score=it.score, reason=it.reason)


def recommend_pb(out: RecommendResult) -> recommendations_pb2.RecommendResponse:
    """:class:`RecommendResult` -> ``RecommendResponse``."""
    msg = recommendations_pb2.RecommendResponse(
        model_version=out.model_version,
        variant=out.variant,
        personalized=out.personalized,
        strategy=out.strategy,
        request_id=out.request_id,
    )
    # Items added in place (half the cost of building each message and copying the list in),
    # their fields set one by one (a fifth less again than passing them to add()).
    add, quotes = msg.items.add, out.quotes
    for it in out.items:
        item = add()
        item.item_id = str(it.item_id)
        item.score = float(it.score)
        item.reason = it.reason
        quote = quotes.get(it.item_id) if quotes else None
        if quote is not None:
            item.quote.CopyFrom(quote_pb(quote, out.currency))
    return msg


def similar_pb(out: SimilarItemsOut) -> recommendations_pb2.SimilarItemsResponse:
    """:class:`SimilarItemsOut` -> ``SimilarItemsResponse``."""
    return recommendations_pb2.SimilarItemsResponse(
        items=[_item_pb(it) for it in out.items],
        model_version=out.model_version,
        request_id=out.request_id,
    )


def quotes_pb(out: QuotesResult) -> pricing_pb2.QuotePricesResponse:
    """:class:`QuotesResult` -> ``QuotePricesResponse``."""
    return pricing_pb2.QuotePricesResponse(
        quotes=[quote_pb(q, out.currency) for q in out.quotes], request_id=out.request_id
    )


def explain_pb(out: ExplainQuoteOut) -> pricing_pb2.ExplainQuoteResponse:
    """:class:`ExplainQuoteOut` -> ``ExplainQuoteResponse``."""
    return pricing_pb2.ExplainQuoteResponse(
        quote_id=out.quote_id, explanation=_struct(out.explanation)
    )


def receipt_pb(out: QuoteReceiptOut) -> pricing_pb2.QuoteReceiptResponse:
    """:class:`QuoteReceiptOut` -> ``QuoteReceiptResponse`` (the receipt as exact JSON text)."""
    return pricing_pb2.QuoteReceiptResponse(
        quote_id=out.quote_id,
        receipt_json=json.dumps(out.receipt, sort_keys=True, ensure_ascii=False),
    )


def log_events_pb(out: LogEventsOut) -> events_pb2.LogEventsResponse:
    """:class:`LogEventsOut` -> ``LogEventsResponse``."""
    return events_pb2.LogEventsResponse(
        accepted=out.accepted, duplicates=out.duplicates, request_id=out.request_id
    )


def personalization_pb(out: PersonalizationOut) -> shoppers_pb2.Personalization:
    """:class:`PersonalizationOut` -> ``Personalization``."""
    return shoppers_pb2.Personalization(
        user_id=out.user_id, enabled=out.enabled, updated_at=out.updated_at
    )


def guardrails_pb(out: GuardrailsOut) -> admin_pb2.Guardrails:
    """:class:`GuardrailsOut` -> ``Guardrails``."""
    values = {k: v for k, v in out.values.model_dump().items() if v is not None}
    return admin_pb2.Guardrails(
        scope=out.scope,
        values=admin_pb2.GuardrailValues(**values),
        version=out.version,
        updated_by=out.updated_by,
        updated_at=out.updated_at,
        reason=out.reason,
    )


def guardrail_change_pb(out: GuardrailChangeOut) -> admin_pb2.GuardrailChange:
    """:class:`GuardrailChangeOut` -> ``GuardrailChange``."""
    return admin_pb2.GuardrailChange(
        version=out.version,
        at=out.at,
        author=out.author,
        reason=out.reason,
        action=out.action,
        scope=out.scope,
        diff=[_struct(row) for row in out.diff],
    )


def guardrail_history_pb(out: GuardrailHistoryOut) -> admin_pb2.GuardrailHistory:
    """:class:`GuardrailHistoryOut` -> ``GuardrailHistory``."""
    return admin_pb2.GuardrailHistory(
        changes=[guardrail_change_pb(c) for c in out.changes], version=out.version
    )


def effective_guardrail_pb(out: EffectiveGuardrailOut) -> admin_pb2.EffectiveGuardrail:
    """:class:`EffectiveGuardrailOut` -> ``EffectiveGuardrail`` (unset fields stay unset)."""
    data = {k: v for k, v in out.model_dump().items() if v is not None}
    return admin_pb2.EffectiveGuardrail(**data)


def audit_pb(out: AuditReportOut) -> admin_pb2.AuditReport:
    """:class:`AuditReportOut` -> ``AuditReport``."""
    return admin_pb2.AuditReport(report=_struct(out.report))


def model_info_pb(out: ModelInfoOut) -> admin_pb2.ModelInfo:
    """:class:`ModelInfoOut` -> ``ModelInfo``."""
    return admin_pb2.ModelInfo(
        model_version=out.model_version,
        bundle_path=out.bundle_path,
        trained_at=out.trained_at,
        loaded_at=out.loaded_at,
        n_items=out.n_items,
        n_users=out.n_users,
        variants=out.variants,
        manifest=_struct(out.manifest),
    )
