"""gRPC and HTTP give identical answers and identical errors (serving.grpc_server,
serving.http_app over one serving.service)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from serving_support import Clients, grpc_error, http_error

from proto.fairshelf.v1 import admin_pb2, recommendations_pb2, shoppers_pb2
from serving.app import FairshelfServer


def _known_user(server: FairshelfServer) -> str:
    model = server.holder.require()
    return str(model.bundle.user_ids[0])


def _grpc_items(resp: Any) -> list[tuple[str, float, str]]:
    return [(it.item_id, it.score, it.reason) for it in resp.items]


def _http_items(body: dict[str, Any]) -> list[tuple[str, float, str]]:
    return [(it["item_id"], it["score"], it["reason"]) for it in body["items"]]


@pytest.mark.parametrize("user", ["known", "never-seen-shopper"])
def test_same_recommendations_on_both_transports(
    server: FairshelfServer, clients: Clients, user: str
) -> None:
    user_id = _known_user(server) if user == "known" else user
    g = clients.recs.Recommend(
        recommendations_pb2.RecommendRequest(
            user_id=user_id,
            k=7,
            filters=recommendations_pb2.RecommendFilters(exclude_purchased=False),
        ),
        metadata=clients.md(),
    )
    h = clients.http.post(
        "/v1/recommend",
        json={"user_id": user_id, "k": 7, "filters": {"exclude_purchased": False}},
        headers=clients.hdr(),
    )
    assert h.status_code == 200, h.text
    body = h.json()
    assert _grpc_items(g) == _http_items(body)
    assert len(body["items"]) == 7
    for key in ("model_version", "variant", "personalized", "strategy"):
        assert getattr(g, key) == body[key]
    assert body["strategy"] == ("trained_vector" if user == "known" else "trending")


def test_same_similar_items(server: FairshelfServer, clients: Clients) -> None:
    item = str(server.holder.require().bundle.item_ids[3])
    g = clients.recs.SimilarItems(
        recommendations_pb2.SimilarItemsRequest(item_id=item, k=5), metadata=clients.md()
    )
    h = clients.http.get(f"/v1/items/{item}/similar", params={"k": 5}, headers=clients.hdr())
    assert h.status_code == 200
    assert _grpc_items(g) == _http_items(h.json())
    assert item not in [it.item_id for it in g.items]


CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("missing user id", {"k": 5}, "INVALID_ARGUMENT", "user_id"),
    ("k zero", {"user_id": "u1", "k": 0}, "INVALID_ARGUMENT", "k"),
    ("k negative", {"user_id": "u1", "k": -3}, "INVALID_ARGUMENT", "k"),
    ("k too large", {"user_id": "u1", "k": 1001}, "INVALID_ARGUMENT", "k"),
    ("bad price range", {"user_id": "u1", "filters": {"min_price": 5, "max_price": 1}},
     "INVALID_ARGUMENT", "min_price"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "code", "field"), CASES, ids=[c[0] for c in CASES])
def test_same_errors_for_bad_recommend_requests(
    clients: Clients, name: str, body: dict[str, Any], code: str, field: str | None
) -> None:
    msg = recommendations_pb2.RecommendRequest(
        user_id=body.get("user_id", ""),
        filters=recommendations_pb2.RecommendFilters(**body.get("filters", {})),
    )
    if "k" in body:
        msg.k = body["k"]
    g = grpc_error(clients.recs.Recommend, msg, metadata=clients.md())
    resp = clients.http.post("/v1/recommend", json=body, headers=clients.hdr())
    assert resp.status_code == 400
    h = http_error(resp)
    assert g == h
    assert (g["code"], g["field"]) == (code, field)
    assert field in g["message"] or field == "min_price"


def test_same_error_for_unknown_item(clients: Clients) -> None:
    g = grpc_error(
        clients.recs.SimilarItems,
        recommendations_pb2.SimilarItemsRequest(item_id="no-such-item", k=5),
        metadata=clients.md(),
    )
    resp = clients.http.get("/v1/items/no-such-item/similar", headers=clients.hdr())
    assert resp.status_code == 404
    assert g == http_error(resp)
    assert g["code"] == "NOT_FOUND" and "no-such-item" in g["message"]


def test_same_error_for_malformed_body(clients: Clients) -> None:
    raw = clients.channel.unary_unary(
        "/fairshelf.v1.RecommendationService/Recommend",
        request_serializer=None,
        response_deserializer=None,
    )
    g = grpc_error(raw, b"\xff\xff\xff not protobuf", metadata=clients.md())
    resp = clients.http.post(
        "/v1/recommend",
        content=b'{"user_id": "u1", "k": ',
        headers={**clients.hdr(), "content-type": "application/json"},
    )
    assert resp.status_code == 400
    assert g == http_error(resp)
    assert g == {"code": "INVALID_ARGUMENT", "message": "malformed request body", "field": "body"}


def test_same_errors_for_missing_and_wrong_credentials(clients: Clients) -> None:
    req = recommendations_pb2.RecommendRequest(user_id="u1", k=3)
    g = grpc_error(clients.recs.Recommend, req, metadata=clients.md(None))
    resp = clients.http.post("/v1/recommend", json={"user_id": "u1", "k": 3})
    assert resp.status_code == 401
    assert g == http_error(resp) and g["code"] == "UNAUTHENTICATED"

    bad = (("x-api-key", "sk-not-a-real-key-000000000"),)
    g = grpc_error(clients.recs.Recommend, req, metadata=bad)
    resp = clients.http.post("/v1/recommend", json={"user_id": "u1"}, headers=dict(bad))
    assert resp.status_code == 401 and g == http_error(resp)
    assert "sk-not-a-real-key" not in g["message"]


def test_same_error_for_wrong_role(clients: Clients) -> None:
    g = grpc_error(
        clients.admin.PutGuardrails,
        admin_pb2.PutGuardrailsRequest(scope="global", reason="x"),
        metadata=clients.md("storefront"),
    )
    resp = clients.http.put(
        "/v1/guardrails/global", json={"reason": "x"}, headers=clients.hdr("storefront")
    )
    assert resp.status_code == 403
    assert g == http_error(resp)
    assert g["code"] == "PERMISSION_DENIED" and "PutGuardrails" in g["message"]
    # The pricing role may not log shopper events.
    g = grpc_error(
        clients.shoppers.SetPersonalization,
        shoppers_pb2.SetPersonalizationRequest(user_id="u1", enabled=False),
        metadata=clients.md("pricing"),
    )
    resp = clients.http.put(
        "/v1/shoppers/u1/personalization", json={"enabled": False}, headers=clients.hdr("pricing")
    )
    assert resp.status_code == 403 and g == http_error(resp)


def test_request_id_travels_both_ways(clients: Clients) -> None:
    _, call = clients.recs.Recommend.with_call(
        recommendations_pb2.RecommendRequest(user_id="u1", k=2),
        metadata=(*clients.md(), ("x-request-id", "rid-grpc-1")),
    )
    assert dict(call.trailing_metadata())["x-request-id"] == "rid-grpc-1"
    resp = clients.http.post(
        "/v1/recommend",
        json={"user_id": "u1", "k": 0},
        headers={**clients.hdr(), "x-request-id": "rid-http-1"},
    )
    assert resp.headers["x-request-id"] == "rid-http-1"
    assert resp.json()["error"]["request_id"] == "rid-http-1"


def test_grpc_status_codes_match_http_statuses(clients: Clients) -> None:
    # Spot check of the shared table through the wire: UNAVAILABLE pricing maps to 503.
    from proto.fairshelf.v1 import pricing_pb2

    try:
        clients.pricing.QuotePrices(
            pricing_pb2.QuotePricesRequest(item_ids=["x"]), metadata=clients.md()
        )
        grpc_code = "OK"
    except grpc.RpcError as err:
        grpc_code = err.code().name  # type: ignore[attr-defined]
    resp = clients.http.post("/v1/prices/quote", json={"item_ids": ["x"]}, headers=clients.hdr())
    expected = {"OK": 200, "NOT_FOUND": 404, "UNAVAILABLE": 503, "INVALID_ARGUMENT": 400}
    assert resp.status_code == expected[grpc_code]


# -- pricing and admin ------------------------------------------------------------------------


def _items(server: FairshelfServer, n: int) -> list[str]:
    return [str(i) for i in server.holder.require().bundle.item_ids[:n]]


def test_same_prices_on_both_transports_and_for_every_shopper(
    server: FairshelfServer, clients: Clients
) -> None:
    from proto.fairshelf.v1 import pricing_pb2

    ids = _items(server, 4)
    g = clients.pricing.QuotePrices(
        pricing_pb2.QuotePricesRequest(
            item_ids=ids, shopper=pricing_pb2.ShopperInfo(user_id="loyal", orders=40)
        ),
        metadata=clients.md(),
    )
    h = clients.http.post(
        "/v1/prices/quote",
        json={"item_ids": ids, "shopper": {"user_id": "new", "orders": 0}},
        headers=clients.hdr(),
    )
    assert h.status_code == 200, h.text
    hq = h.json()["quotes"]
    assert [q.item_id for q in g.quotes] == [q["item_id"] for q in hq] == ids
    for gq, jq in zip(g.quotes, hq, strict=True):
        assert gq.list_price == jq["list_price"] > 0
        assert (gq.price_epoch, gq.policy_version) == (jq["price_epoch"], jq["policy_version"])
        assert gq.quote_id != jq["quote_id"]
    # Explanations name the public inputs on both transports.
    ge = clients.pricing.ExplainQuote(
        pricing_pb2.ExplainQuoteRequest(quote_id=g.quotes[0].quote_id), metadata=clients.md()
    )
    he = clients.http.get(f"/v1/prices/quotes/{hq[0]['quote_id']}", headers=clients.hdr())
    assert he.status_code == 200
    assert list(ge.explanation["inputs"]) == he.json()["explanation"]["inputs"]


def test_same_errors_for_bad_quotes(server: FairshelfServer, clients: Clients) -> None:
    from proto.fairshelf.v1 import pricing_pb2

    for ids in ([], ["no-such-item"]):
        g = grpc_error(
            clients.pricing.QuotePrices,
            pricing_pb2.QuotePricesRequest(item_ids=ids),
            metadata=clients.md(),
        )
        resp = clients.http.post("/v1/prices/quote", json={"item_ids": ids}, headers=clients.hdr())
        assert resp.status_code in (400, 404)
        assert g == http_error(resp)
    g = grpc_error(
        clients.pricing.ExplainQuote,
        pricing_pb2.ExplainQuoteRequest(quote_id="q_unknown"),
        metadata=clients.md(),
    )
    resp = clients.http.get("/v1/prices/quotes/q_unknown", headers=clients.hdr())
    assert resp.status_code == 404 and g == http_error(resp)


def test_guardrails_by_role_on_both_transports(clients: Clients) -> None:
    values = {"floor": 1.0, "max_change_pct": 0.2}
    put = clients.http.put(
        "/v1/guardrails/category:c00",
        json={"values": values, "reason": "parity test"},
        headers=clients.hdr("pricing"),
    )
    assert put.status_code == 200, put.text
    version = put.json()["version"]
    g = clients.admin.GetGuardrails(
        admin_pb2.GetGuardrailsRequest(scope="category:c00"), metadata=clients.md("pricing")
    )
    h = clients.http.get("/v1/guardrails/category:c00", headers=clients.hdr("pricing")).json()
    assert g.version == h["version"] == version
    assert g.values.floor == h["values"]["floor"] == 1.0
    assert g.updated_by == h["updated_by"]
    g2 = clients.admin.PutGuardrails(
        admin_pb2.PutGuardrailsRequest(
            scope="category:c00",
            values=admin_pb2.GuardrailValues(floor=2.0),
            reason="raise floor",
            expected_version=version,
        ),
        metadata=clients.md("admin"),
    )
    assert g2.version > version
    # A stale expected_version conflicts the same way on both transports.
    stale = {"values": values, "reason": "stale", "expected_version": version}
    resp = clients.http.put(
        "/v1/guardrails/category:c00", json=stale, headers=clients.hdr("pricing")
    )
    err = grpc_error(
        clients.admin.PutGuardrails,
        admin_pb2.PutGuardrailsRequest(
            scope="category:c00",
            values=admin_pb2.GuardrailValues(**values),
            reason="stale",
            expected_version=version,
        ),
        metadata=clients.md("pricing"),
    )
    assert resp.status_code == 409 and err == http_error(resp)
    assert err["code"] == "FAILED_PRECONDITION"


def test_audit_report_on_both_transports(clients: Clients) -> None:
    g = clients.admin.GetAuditReport(admin_pb2.AuditReportRequest(), metadata=clients.md("admin"))
    h = clients.http.get("/v1/audit/report", headers=clients.hdr("pricing"))
    assert h.status_code == 200
    body = h.json()["report"]
    assert body["chain"]["ok"] is True and g.report["chain"]["ok"] is True
    assert body["g3_violations"] == 0 and body["g4_violations"] == 0
    bad = clients.http.get(
        "/v1/audit/report", params={"since": "soon"}, headers=clients.hdr("admin")
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "since"
