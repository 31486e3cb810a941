"""serving.grpc_server: fairshelf.v1 services, health checking and reflection on a real server."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from serving_support import Clients, grpc_error, running_server, tiny_bundles

from proto.fairshelf.v1 import (
    admin_pb2,
    events_pb2,
    recommendations_pb2,
    recommendations_pb2_grpc,
    shoppers_pb2,
)
from recsys.types import REASON_CODES
from serving.app import FairshelfServer
from serving.grpc_server import METHODS, SERVICE_NAMES


def test_every_proto_method_is_served() -> None:
    from proto.fairshelf.v1 import pricing_pb2

    modules = (recommendations_pb2, pricing_pb2, events_pb2, shoppers_pb2, admin_pb2)
    declared = {
        svc.full_name: {m.name for m in svc.methods}
        for mod in modules
        for svc in mod.DESCRIPTOR.services_by_name.values()
    }
    assert declared == {name: set(methods) for name, methods in METHODS.items()}
    assert set(SERVICE_NAMES) == set(declared)


def test_health_reports_serving(clients: Clients) -> None:
    stub = health_pb2_grpc.HealthStub(clients.channel)
    for service in ("", "fairshelf.v1.RecommendationService"):
        resp = stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(clients: Clients) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(clients.channel)
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert set(SERVICE_NAMES) <= names
    assert "grpc.health.v1.Health" in names


def test_recommend_known_shopper(server: FairshelfServer, clients: Clients) -> None:
    model = server.holder.require()
    user = str(model.bundle.user_ids[1])
    resp = clients.recs.Recommend(
        recommendations_pb2.RecommendRequest(user_id=user, k=10), metadata=clients.md()
    )
    assert len(resp.items) == 10
    assert resp.model_version == model.bundle_id and resp.variant
    assert resp.strategy == "trained_vector" and resp.personalized
    assert all(it.reason in REASON_CODES for it in resp.items)
    scores = [it.score for it in resp.items]
    assert len({it.item_id for it in resp.items}) == 10
    assert scores[0] >= scores[-1]


def test_filters_are_applied(server: FairshelfServer, clients: Clients) -> None:
    model = server.holder.require()
    items = model.bundle.items
    top = str(items["category"].iloc[0]).split("/")[0]
    user = str(model.bundle.user_ids[2])
    resp = clients.recs.Recommend(
        recommendations_pb2.RecommendRequest(
            user_id=user,
            k=5,
            filters=recommendations_pb2.RecommendFilters(
                include_categories=[top], max_price=float(items["base_price"].median())
            ),
        ),
        metadata=clients.md(),
    )
    by_id = items.set_index("item_id")
    assert resp.items
    for it in resp.items:
        assert str(by_id.loc[it.item_id, "category"]).startswith(top)
        assert by_id.loc[it.item_id, "base_price"] <= items["base_price"].median()


def test_log_events_then_opt_out(server: FairshelfServer, clients: Clients) -> None:
    req = events_pb2.LogEventsRequest(
        events=[
            events_pb2.Event(
                event_id="g-1", user_id="g-user", item_id="x", event_type="click", unit_price=2.0
            )
        ]
    )
    assert clients.events.LogEvents(req, metadata=clients.md()).accepted == 1
    assert clients.events.LogEvents(req, metadata=clients.md()).duplicates == 1
    err = grpc_error(
        clients.events.LogEvents,
        events_pb2.LogEventsRequest(events=[events_pb2.Event(user_id="g", item_id="x")]),
        metadata=clients.md(),
    )
    assert err["code"] == "INVALID_ARGUMENT" and err["field"] == "events[0].event_type"
    out = clients.shoppers.SetPersonalization(
        shoppers_pb2.SetPersonalizationRequest(user_id="g-user", enabled=False),
        metadata=clients.md(),
    )
    assert out.enabled is False and out.updated_at
    resp = clients.recs.Recommend(
        recommendations_pb2.RecommendRequest(user_id="g-user", k=3), metadata=clients.md()
    )
    assert not resp.personalized and resp.strategy == "non_personalized"


def test_model_info_needs_a_key(server: FairshelfServer, clients: Clients) -> None:
    info = clients.admin.GetModelInfo(admin_pb2.ModelInfoRequest(), metadata=clients.md("admin"))
    assert info.model_version == server.holder.require().bundle_id
    assert info.manifest["bundle_id"] == info.model_version
    err = grpc_error(clients.admin.GetModelInfo, admin_pb2.ModelInfoRequest(), metadata=())
    assert err["code"] == "UNAUTHENTICATED"


def test_metrics_count_grpc_calls(server: FairshelfServer, clients: Clients) -> None:
    clients.recs.Recommend(
        recommendations_pb2.RecommendRequest(user_id="m", k=2), metadata=clients.md()
    )
    text = server.metrics.render().decode()
    assert 'fairshelf_requests_total{code="OK",operation="Recommend",transport="grpc"}' in text


def test_unknown_method_is_unimplemented(clients: Clients) -> None:
    raw = clients.channel.unary_unary("/fairshelf.v1.RecommendationService/Nope")
    with pytest.raises(grpc.RpcError) as err:
        raw(b"")
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]


def test_long_lived_connections_are_recycled_without_failing_calls(
    tmp_path: Path, server: FairshelfServer
) -> None:
    # A client keeps one channel open; the server asks it to reconnect after the maximum
    # connection age, so that several workers or replicas share its calls over time.
    user = str(server.holder.require().bundle.user_ids[1])
    with running_server(
        tiny_bundles(tmp_path / "bundles"),
        tmp_path / "age.db",
        grpc_max_connection_age_seconds=0.3,
        grpc_max_connection_age_grace_seconds=1.0,
    ) as aged:
        states: list[grpc.ChannelConnectivity] = []
        with grpc.insecure_channel(f"127.0.0.1:{aged.grpc_port}") as channel:
            channel.subscribe(states.append, try_to_connect=True)
            stub = recommendations_pb2_grpc.RecommendationServiceStub(channel)
            deadline = time.monotonic() + 2.0
            calls = 0
            while time.monotonic() < deadline:
                resp = stub.Recommend(
                    recommendations_pb2.RecommendRequest(user_id=user, k=5),
                    metadata=Clients.md(),
                    timeout=5,
                )
                assert len(resp.items) == 5
                calls += 1
                time.sleep(0.02)
            channel.unsubscribe(states.append)
        ready = grpc.ChannelConnectivity.READY
        first = states.index(ready)
        # Sent away at least once after it was ready, and ready again: every call answered.
        assert any(s != ready for s in states[first:]), states
        assert states.count(ready) >= 2, states
        assert calls > 20
