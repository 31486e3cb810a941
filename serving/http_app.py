"""The HTTP/JSON transport: FastAPI routes over the one service object.

Bodies are parsed into the models of :mod:`serving.api_models` (published in the OpenAPI
document at ``/docs`` and ``/openapi.json``). Every error, including malformed JSON, a body of
the wrong shape and an unknown route, answers with the same envelope
``{"error": {"code", "message", "field", "request_id"}}`` and the HTTP status from
:mod:`serving.errors`. Credentials: ``x-api-key`` or ``authorization: Bearer``; request id:
``x-request-id`` in and out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from fairshelf.errors import FairshelfError, InvalidArgument, MethodNotAllowed, NotFound
from serving import contract as C
from serving.api_models import (
    AuditReportOut,
    DeleteGuardrailsIn,
    EffectiveGuardrailOut,
    ErrorOut,
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
    QuotePricesOut,
    QuoteReceiptOut,
    RecommendIn,
    RecommendOut,
    RollbackGuardrailsIn,
    SimilarItemsOut,
)
from serving.api_promotions import NAME as PROMOTION_NAME
from serving.api_promotions import (
    EndPromotionIn,
    PromotionChangeOut,
    PromotionsOut,
    PublishPromotionIn,
)
from serving.auth import api_key_from_headers
from serving.console import mount_console
from serving.errors import MALFORMED_BODY, REQUEST_ID_METADATA_KEY
from serving.http_responses import error_response, json_response
from serving.logging import bind_request, get_logger
from serving.metrics import Metrics
from serving.service import CallContext, FairshelfService

log = get_logger("fairshelf.http")

# Path and query parameters, with the rules the service checks published in the schema.
ItemId = Annotated[str, Path(json_schema_extra=C.ID)]
UserId = Annotated[str, Path(json_schema_extra=C.ID)]
QuoteId = Annotated[str, Path(json_schema_extra=C.ID)]
ScopeId = Annotated[str, Path(json_schema_extra=C.SCOPE)]
PromotionName = Annotated[str, Path(json_schema_extra=PROMOTION_NAME)]
K = Annotated[int | None, Query(json_schema_extra=C.K)]
HistoryLimit = Annotated[int | None, Query(json_schema_extra=C.HISTORY_LIMIT)]
Timestamp = Annotated[str | None, Query(json_schema_extra=C.TIMESTAMP)]
ExperimentName = Annotated[str, Path(json_schema_extra=C.ID)]

_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE")

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 405, 409, 422, 500, 503)
}


def _call(request: Request, response: Response) -> CallContext:
    request_id = bind_request(request.headers.get(REQUEST_ID_METADATA_KEY))
    request.state.request_id = request_id
    response.headers[REQUEST_ID_METADATA_KEY] = request_id
    return CallContext(api_key_from_headers(request.headers), request_id, "http")


def _loc_text(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _validation_error(exc: RequestValidationError) -> InvalidArgument:
    first = exc.errors()[0]
    # Undecodable JSON, or a body that is not an object at all: the body as a whole is bad.
    if first.get("type") == "json_invalid" or tuple(first.get("loc", ())) == ("body",):
        return InvalidArgument(MALFORMED_BODY, field="body")
    field = _loc_text(first.get("loc", ()))
    return InvalidArgument(f"{field}: {first.get('msg', 'invalid value')}", field=field)


def _error_response(request: Request, exc: BaseException) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None) or bind_request(
        request.headers.get(REQUEST_ID_METADATA_KEY)
    )
    resp = error_response(exc, request_id)
    if isinstance(exc, MethodNotAllowed):
        resp.headers["Allow"] = ", ".join(exc.allow)
    return resp


def _method_not_allowed(
    app: FastAPI, request: Request, allowed: Sequence[str] = ()
) -> MethodNotAllowed:
    """405 for ``request``, allowing ``allowed`` or else every method of every published
    route whose path matches (Starlette's own 405 names only the first such route's)."""
    methods = set(allowed)
    if not methods:
        for route in app.router.routes:
            if not getattr(route, "include_in_schema", False):
                continue
            match, _ = route.matches({**request.scope, "method": "GET"})
            if match != Match.NONE:
                methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    allow = tuple(sorted(methods))
    return MethodNotAllowed(
        f"{request.method} is not allowed on {request.url.path}; allowed: {', '.join(allow)}",
        allow=allow,
    )


def build_http_app(service: FairshelfService, metrics: Metrics) -> FastAPI:
    """The FastAPI application for ``service``.

    Parameters
    ----------
    service:
        The one service object.
    metrics:
        Rendered at ``/metrics``.

    Returns
    -------
    FastAPI
    """
    app = FastAPI(
        title="fairshelf",
        version="1",
        description="Recommendations and fair dynamic pricing for online stores.",
        responses=_ERRORS,
    )

    @app.exception_handler(FairshelfError)
    async def _domain_error(request: Request, exc: FairshelfError) -> JSONResponse:
        return _error_response(request, exc)

    def _only(path: str, *allowed: str) -> None:
        # A fixed path under a ``{scope:path}`` route: without this, PUT /v1/guardrails/history
        # would reach the scope route and fail on its body instead of answering 405.
        answered = {*allowed, "HEAD"} if "GET" in allowed else set(allowed)
        others = [m for m in _METHODS if m not in answered]

        @app.api_route(path, methods=others, include_in_schema=False)
        def wrong_method(request: Request) -> Response:
            raise _method_not_allowed(app, request, allowed)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = _validation_error(exc)
        return _error_response(request, err)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            err: FairshelfError = NotFound(f"no route {request.method} {request.url.path}")
            return _error_response(request, err)
        if exc.status_code == 405:
            return _error_response(request, _method_not_allowed(app, request))
        resp = _error_response(request, InvalidArgument(str(exc.detail)))
        resp.status_code = exc.status_code
        for name, value in (exc.headers or {}).items():
            resp.headers[name] = value
        return resp

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return _error_response(request, exc)

    @app.post("/v1/recommend", response_model=RecommendOut, tags=["recommendations"])
    async def recommend(request: Request, response: Response, body: RecommendIn) -> Response:
        """Ranked items for a shopper (trained vector, fold-in of recent events, or trending)."""
        # Served inline on the event loop: the call is short and CPU-bound, so a thread-pool
        # hop would only add latency. The body is built once, shaped as RecommendOut.
        call = _call(request, response)
        result = service.recommend(call, body)
        return json_response(result.to_json(), call.request_id)

    @app.get(
        "/v1/items/{item_id}/similar", response_model=SimilarItemsOut, tags=["recommendations"]
    )
    def similar(
        request: Request, response: Response, item_id: ItemId, k: K = None
    ) -> SimilarItemsOut:
        """Items similar to one item (product page)."""
        return service.similar_items(_call(request, response), item_id, k)

    @app.post("/v1/prices/quote", response_model=QuotePricesOut, tags=["pricing"])
    def quote(request: Request, response: Response, body: QuotePricesIn) -> Response:
        """Price quotes through the fairness guard."""
        call = _call(request, response)
        result = service.quote_prices(call, body)
        return json_response(result.to_json(), call.request_id)

    @app.get(
        "/v1/prices/quotes/{quote_id}/receipt", response_model=QuoteReceiptOut, tags=["pricing"]
    )
    def receipt(request: Request, response: Response, quote_id: QuoteId) -> QuoteReceiptOut:
        """A quote's receipt, checkable offline with the log's public key."""
        return service.quote_receipt(_call(request, response), quote_id)

    @app.get("/v1/prices/quotes/{quote_id}", response_model=ExplainQuoteOut, tags=["pricing"])
    def explain(request: Request, response: Response, quote_id: QuoteId) -> ExplainQuoteOut:
        """Explain a quote: inputs, rule, guardrail, programs."""
        return service.explain_quote(_call(request, response), quote_id)

    @app.post("/v1/events", response_model=LogEventsOut, tags=["events"])
    def events(request: Request, response: Response, body: LogEventsIn) -> LogEventsOut:
        """Append events (1..1000, all or none), idempotent by event_id."""
        return service.log_events(_call(request, response), body)

    @app.put(
        "/v1/shoppers/{user_id}/personalization",
        response_model=PersonalizationOut,
        tags=["shoppers"],
    )
    def personalization(
        request: Request, response: Response, user_id: UserId, body: PersonalizationIn
    ) -> PersonalizationOut:
        """Switch a shopper's personalization on or off (stored durably)."""
        return service.set_personalization(_call(request, response), user_id, body)

    # Registered before the ``{scope:path}`` routes, which would otherwise swallow them
    # ("history" and "rollback" are not scope ids, so nothing is shadowed).
    _only("/v1/guardrails/history", "GET")
    _only("/v1/guardrails/rollback", "POST")

    @app.get("/v1/guardrails/history", response_model=GuardrailHistoryOut, tags=["admin"])
    def guardrail_history(
        request: Request, response: Response, limit: HistoryLimit = None
    ) -> GuardrailHistoryOut:
        """Guardrail changes, newest first: who, when, why and the field-level diff."""
        return service.guardrail_history(_call(request, response), limit)

    @app.post("/v1/guardrails/rollback", response_model=GuardrailChangeOut, tags=["admin"])
    def rollback_guardrails(
        request: Request, response: Response, body: RollbackGuardrailsIn
    ) -> GuardrailChangeOut:
        """Restore an older guardrail version as a new one (pricing role; audited)."""
        return service.rollback_guardrails(_call(request, response), body)

    @app.get("/v1/items/{item_id}/guardrail", response_model=EffectiveGuardrailOut, tags=["admin"])
    def effective_guardrail(
        request: Request, response: Response, item_id: ItemId
    ) -> EffectiveGuardrailOut:
        """The guardrail in force for one item, with the scope each field came from."""
        return service.effective_guardrail(_call(request, response), item_id)

    @app.get("/v1/guardrails/{scope:path}", response_model=GuardrailsOut, tags=["admin"])
    def get_guardrails(request: Request, response: Response, scope: ScopeId) -> GuardrailsOut:
        """Guardrails of a scope: ``global``, ``category:<path>`` or ``item:<id>``."""
        return service.get_guardrails(_call(request, response), scope)

    @app.put("/v1/guardrails/{scope:path}", response_model=GuardrailsOut, tags=["admin"])
    def put_guardrails(
        request: Request, response: Response, scope: ScopeId, body: PutGuardrailsIn
    ) -> GuardrailsOut:
        """Replace the guardrails of a scope (pricing role; versioned and audited)."""
        return service.put_guardrails(_call(request, response), scope, body)

    @app.delete("/v1/guardrails/{scope:path}", response_model=GuardrailChangeOut, tags=["admin"])
    def delete_guardrails(
        request: Request,
        response: Response,
        scope: ScopeId,
        reason: Annotated[str, Query(json_schema_extra=C.REASON)],
        expected_version: int | None = None,
    ) -> GuardrailChangeOut:
        """Remove the rule of a scope; its fields inherit from broader scopes again (pricing
        role; versioned and audited). ``reason`` is required."""
        body = DeleteGuardrailsIn(reason=reason, expected_version=expected_version)
        return service.delete_guardrails(_call(request, response), scope, body)

    @app.get("/v1/promotions", response_model=PromotionsOut, tags=["admin"])
    def list_promotions(request: Request, response: Response) -> PromotionsOut:
        """Published promotions and the ones running now (every quote carries those)."""
        return service.list_promotions(_call(request, response))

    @app.put("/v1/promotions/{name}", response_model=PromotionChangeOut, tags=["admin"])
    def publish_promotion(
        request: Request, response: Response, name: PromotionName, body: PublishPromotionIn
    ) -> PromotionChangeOut:
        """Publish a time-boxed promotion (pricing role; versioned and audited)."""
        return service.publish_promotion(_call(request, response), name, body)

    @app.post("/v1/promotions/{name}/end", response_model=PromotionChangeOut, tags=["admin"])
    def end_promotion(
        request: Request, response: Response, name: PromotionName, body: EndPromotionIn
    ) -> PromotionChangeOut:
        """End a promotion now (pricing role; versioned and audited)."""
        return service.end_promotion(_call(request, response), name, body)

    @app.get("/v1/audit/report", response_model=AuditReportOut, tags=["admin"])
    def audit(
        request: Request, response: Response, since: Timestamp = None, until: Timestamp = None
    ) -> AuditReportOut:
        """The fairness audit (G3 consistency, G4 discounts, G5 chain) for a window."""
        return service.audit_report(_call(request, response), since, until)

    @app.get("/v1/experiments/{name}/report", response_model=ExperimentReportOut, tags=["admin"])
    def experiment_report(
        request: Request,
        response: Response,
        name: ExperimentName,
        since: Timestamp = None,
        until: Timestamp = None,
    ) -> ExperimentReportOut:
        """The readout of an experiment: balance, effects with intervals, CUPED, sequential."""
        return service.experiment_report(_call(request, response), name, since, until)

    @app.get("/v1/model", response_model=ModelInfoOut, tags=["admin"])
    def model(request: Request, response: Response) -> ModelInfoOut:
        """The bundle being served."""
        return service.model_info(_call(request, response))

    # The console's pages under /console, over the same service object.
    mount_console(app, service, metrics)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """Readiness: a model bundle is loaded."""
        ready, detail = service.ready()
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "detail": detail},
            status_code=200 if ready else 503,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def prometheus() -> Response:
        """Prometheus metrics in the Prometheus text exposition format (version 0.0.4), for a
        Prometheus server to scrape; not JSON."""
        return PlainTextResponse(metrics.render(), media_type=metrics.content_type)

    return app
