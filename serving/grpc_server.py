"""The gRPC transport: ``fairshelf.v1`` services over the one service object, plus standard
health checking (``grpc.health.v1``) and server reflection.

Credentials and the request id travel as metadata (``x-api-key`` or ``authorization: Bearer``,
``x-request-id``). Errors are aborted with the code from :mod:`serving.errors`; the request id
and the field at fault ride in trailing metadata (``x-request-id``, ``fairshelf-field``), the
same facts the HTTP error body carries.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from typing import Any, NoReturn, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from proto.fairshelf.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    pricing_pb2,
    pricing_pb2_grpc,
    recommendations_pb2,
    recommendations_pb2_grpc,
    shoppers_pb2,
    shoppers_pb2_grpc,
)
from serving import grpc_convert as conv
from serving.auth import api_key_from_headers
from serving.errors import (
    FIELD_METADATA_KEY,
    REQUEST_ID_METADATA_KEY,
    public_field,
    public_message,
    status_for,
)
from serving.logging import bind_request
from serving.service import CallContext, FairshelfService

R = TypeVar("R")

SERVICE_NAMES: tuple[str, ...] = (
    recommendations_pb2.DESCRIPTOR.services_by_name["RecommendationService"].full_name,
    pricing_pb2.DESCRIPTOR.services_by_name["PricingService"].full_name,
    events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
    shoppers_pb2.DESCRIPTOR.services_by_name["ShopperService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
)


def _abort(context: grpc.ServicerContext, exc: BaseException, request_id: str) -> NoReturn:
    status = status_for(exc)
    trailing: tuple[tuple[str, str | bytes], ...] = ((REQUEST_ID_METADATA_KEY, request_id),)
    field = public_field(exc)
    if field:
        trailing += ((FIELD_METADATA_KEY, field),)
    context.set_trailing_metadata(trailing)
    context.abort(status.grpc_code, public_message(exc))
    raise AssertionError("unreachable")  # abort raises


def _serve(context: grpc.ServicerContext, fn: Callable[[CallContext], R]) -> R:
    md = {k.lower(): v for k, v in context.invocation_metadata() if isinstance(v, str)}
    request_id = bind_request(md.get(REQUEST_ID_METADATA_KEY))
    call = CallContext(api_key_from_headers(md), request_id, "grpc")
    try:
        result = fn(call)
    except Exception as exc:
        _abort(context, exc, request_id)
    context.set_trailing_metadata(((REQUEST_ID_METADATA_KEY, request_id),))
    return result


class _Recommendations(recommendations_pb2_grpc.RecommendationServiceServicer):
    def __init__(self, service: FairshelfService) -> None:
        self.s = service

    def Recommend(self, request: Any, context: Any) -> Any:
        return _serve(
            context, lambda c: conv.recommend_pb(self.s.recommend(c, conv.recommend_in(request)))
        )

    def SimilarItems(self, request: Any, context: Any) -> Any:
        k = request.k if request.HasField("k") else None
        return _serve(
            context, lambda c: conv.similar_pb(self.s.similar_items(c, request.item_id, k))
        )


class _Pricing(pricing_pb2_grpc.PricingServiceServicer):
    def __init__(self, service: FairshelfService) -> None:
        self.s = service

    def QuotePrices(self, request: Any, context: Any) -> Any:
        return _serve(
            context,
            lambda c: conv.quotes_pb(self.s.quote_prices(c, conv.quote_prices_in(request))),
        )

    def ExplainQuote(self, request: Any, context: Any) -> Any:
        return _serve(context, lambda c: conv.explain_pb(self.s.explain_quote(c, request.quote_id)))


class _Events(events_pb2_grpc.EventServiceServicer):
    def __init__(self, service: FairshelfService) -> None:
        self.s = service

    def LogEvents(self, request: Any, context: Any) -> Any:
        return _serve(
            context,
            lambda c: conv.log_events_pb(self.s.log_events(c, conv.log_events_in(request))),
        )


class _Shoppers(shoppers_pb2_grpc.ShopperServiceServicer):
    def __init__(self, service: FairshelfService) -> None:
        self.s = service

    def SetPersonalization(self, request: Any, context: Any) -> Any:
        return _serve(
            context,
            lambda c: conv.personalization_pb(
                self.s.set_personalization(c, request.user_id, conv.personalization_in(request))
            ),
        )


class _Admin(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, service: FairshelfService) -> None:
        self.s = service

    def GetGuardrails(self, request: Any, context: Any) -> Any:
        return _serve(
            context, lambda c: conv.guardrails_pb(self.s.get_guardrails(c, request.scope))
        )

    def PutGuardrails(self, request: Any, context: Any) -> Any:
        return _serve(
            context,
            lambda c: conv.guardrails_pb(
                self.s.put_guardrails(c, request.scope, conv.put_guardrails_in(request))
            ),
        )

    def GetAuditReport(self, request: Any, context: Any) -> Any:
        return _serve(
            context,
            lambda c: conv.audit_pb(
                self.s.audit_report(c, request.since or None, request.until or None)
            ),
        )

    def GetModelInfo(self, request: Any, context: Any) -> Any:
        return _serve(context, lambda c: conv.model_info_pb(self.s.model_info(c)))


class GrpcServer:
    """A running gRPC server for one service object.

    Parameters
    ----------
    service:
        The service object.
    host, port:
        Where to listen; port 0 picks a free port (see :attr:`port`).
    max_workers:
        Threads serving calls.
    """

    def __init__(
        self, service: FairshelfService, host: str, port: int, max_workers: int = 8
    ) -> None:
        self.service = service
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
            options=[("grpc.so_reuseport", 0)],
        )
        recommendations_pb2_grpc.add_RecommendationServiceServicer_to_server(
            _Recommendations(service), self.server
        )
        pricing_pb2_grpc.add_PricingServiceServicer_to_server(_Pricing(service), self.server)
        events_pb2_grpc.add_EventServiceServicer_to_server(_Events(service), self.server)
        shoppers_pb2_grpc.add_ShopperServiceServicer_to_server(_Shoppers(service), self.server)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(_Admin(service), self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind gRPC to {host}:{port}")
        self.update_health()

    def update_health(self) -> None:
        """Report SERVING once a bundle is loaded, NOT_SERVING before."""
        ready, _ = self.service.ready()
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, status)

    def start(self) -> None:
        """Start serving (returns at once)."""
        self.server.start()

    def stop(self, grace: float = 2.0) -> None:
        """Stop, letting calls in flight finish within ``grace`` seconds."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
