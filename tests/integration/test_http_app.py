"""serving.http_app: routes, error envelope, operations endpoints, OpenAPI, on a real server."""

from __future__ import annotations

from serving_support import Clients

from serving.app import FairshelfServer


def test_health_ready_and_metrics(clients: Clients) -> None:
    assert clients.http.get("/healthz").json() == {"status": "ok"}
    ready = clients.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    clients.http.post("/v1/recommend", json={"user_id": "u-metrics", "k": 3}, headers=clients.hdr())
    text = clients.http.get("/metrics").text
    assert (
        'fairshelf_request_seconds_bucket{le="0.001",operation="Recommend",transport="http"}'
        in (text)
    )
    assert 'fairshelf_bundle_reloads_total{outcome="loaded"} 1.0' in text


def test_openapi_lists_every_route(clients: Clients) -> None:
    spec = clients.http.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/v1/recommend",
        "/v1/items/{item_id}/similar",
        "/v1/prices/quote",
        "/v1/prices/quotes/{quote_id}",
        "/v1/events",
        "/v1/shoppers/{user_id}/personalization",
        "/v1/guardrails/{scope}",
        "/v1/guardrails/history",
        "/v1/guardrails/rollback",
        "/v1/items/{item_id}/guardrail",
        "/v1/audit/report",
        "/v1/model",
    } <= paths
    assert clients.http.get("/docs").status_code == 200


def test_model_info(server: FairshelfServer, clients: Clients) -> None:
    body = clients.http.get("/v1/model", headers=clients.hdr()).json()
    model = server.holder.require()
    assert body["model_version"] == model.bundle_id
    assert body["n_items"] == len(model.bundle.item_ids) and body["variants"]
    assert body["manifest"]["bundle_id"] == model.bundle_id


def test_events_are_idempotent_and_validated(clients: Clients) -> None:
    ev = {
        "event_id": "http-ev-1",
        "user_id": "u-http",
        "item_id": "i-1",
        "event_type": "view",
        "unit_price": 3.5,
    }
    first = clients.http.post("/v1/events", json={"events": [ev]}, headers=clients.hdr())
    assert first.status_code == 200 and first.json()["accepted"] == 1
    again = clients.http.post("/v1/events", json={"events": [ev, ev]}, headers=clients.hdr())
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)
    bad = clients.http.post(
        "/v1/events",
        json={"events": [ev | {"event_id": "x2"}, ev | {"event_type": "stare"}]},
        headers=clients.hdr(),
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "events[1].event_type"
    typed = clients.http.post(
        "/v1/events", json={"events": [ev | {"quantity": "many"}]}, headers=clients.hdr()
    )
    assert typed.status_code == 400 and typed.json()["error"]["field"] == "events[0].quantity"


def test_opt_out_is_honoured_on_later_calls(server: FairshelfServer, clients: Clients) -> None:
    user = str(server.holder.require().bundle.user_ids[5])
    before = clients.http.post("/v1/recommend", json={"user_id": user}, headers=clients.hdr())
    assert before.json()["personalized"] is True
    off = clients.http.put(
        f"/v1/shoppers/{user}/personalization", json={"enabled": False}, headers=clients.hdr()
    )
    assert off.status_code == 200 and off.json()["enabled"] is False
    after = clients.http.post("/v1/recommend", json={"user_id": user}, headers=clients.hdr())
    assert after.json()["personalized"] is False
    assert after.json()["strategy"] == "non_personalized"
    missing = clients.http.put(
        f"/v1/shoppers/{user}/personalization", json={}, headers=clients.hdr()
    )
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "enabled"
    clients.http.put(
        f"/v1/shoppers/{user}/personalization", json={"enabled": True}, headers=clients.hdr()
    )
    back = clients.http.post("/v1/recommend", json={"user_id": user}, headers=clients.hdr())
    assert back.json()["personalized"] is True


def test_unknown_route_and_method_use_the_error_envelope(clients: Clients) -> None:
    resp = clients.http.get("/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"
    resp = clients.http.delete("/v1/recommend")
    assert resp.status_code == 405 and "error" in resp.json()


def test_unknown_body_fields_are_rejected(clients: Clients) -> None:
    resp = clients.http.post(
        "/v1/recommend", json={"user_id": "u1", "kk": 3}, headers=clients.hdr()
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["field"] == "kk"
