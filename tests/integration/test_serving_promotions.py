"""Published promotions over both transports: the pricing team publishes and ends them, every
quote in the window carries them whatever the storefront sends, and a quote naming one that is
not running is refused with the same error on HTTP and gRPC.

A real server (SQLite, gRPC and HTTP on loopback) runs the whole module.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.json_format import MessageToDict
from serving_support import Clients, grpc_error, http_error

from proto.fairshelf.v1 import admin_pb2, pricing_pb2
from serving.app import FairshelfServer


def _item(server: FairshelfServer) -> str:
    return str(server.holder.require().bundle.item_ids[3])


def _context_of(clients: Clients, quote_id: str) -> str:
    resp = clients.http.get(f"/v1/prices/quotes/{quote_id}", headers=clients.hdr())
    assert resp.status_code == 200, resp.text
    context: str = resp.json()["explanation"]["quote"]["context_key"]
    return context


def _quote_http(clients: Clients, item: str, promotions: list[str]) -> Any:
    body = {"item_ids": [item], "region": "CN-31", "promotions": promotions}
    return clients.http.post("/v1/prices/quote", json=body, headers=clients.hdr())


def test_promotions_published_carried_refused_and_ended(
    server: FairshelfServer, clients: Clients
) -> None:
    item = _item(server)
    now = datetime.now(UTC)
    body = {
        "title": "Spring sale",
        "description": "Everything is on offer this week.",
        "ends_at": (now + timedelta(days=1)).isoformat(),
        "reason": "seasonal campaign",
    }
    # A storefront key may read but not publish, on both transports.
    resp = clients.http.put("/v1/promotions/spring", json=body, headers=clients.hdr())
    g = grpc_error(
        clients.admin.PublishPromotion,
        admin_pb2.PublishPromotionRequest(name="spring", **body),
        metadata=clients.md("storefront"),
    )
    assert resp.status_code == 403 and g == http_error(resp) and g["code"] == "PERMISSION_DENIED"

    resp = clients.http.put("/v1/promotions/spring", json=body, headers=clients.hdr("pricing"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["version"] == 1 and resp.json()["promotion"]["running"] is True
    assert resp.json()["author"] == "role:pricing"

    listed = clients.http.get("/v1/promotions", headers=clients.hdr()).json()
    via_grpc = MessageToDict(
        clients.admin.ListPromotions(admin_pb2.ListPromotionsRequest(), metadata=clients.md()),
        preserving_proto_field_name=True,
    )
    assert listed["running"] == via_grpc["running"] == ["spring"]
    assert via_grpc["promotions"][0]["title"] == listed["promotions"][0]["title"]

    # The storefront leaves the promotion out, names it, or asks over gRPC: all carry it.
    left_out = _quote_http(clients, item, [])
    named = _quote_http(clients, item, ["spring"])
    assert left_out.status_code == named.status_code == 200
    grpc_quote = clients.pricing.QuotePrices(
        pricing_pb2.QuotePricesRequest(item_ids=[item], region="CN-31"), metadata=clients.md()
    )
    for quote_id in (
        left_out.json()["quotes"][0]["quote_id"],
        named.json()["quotes"][0]["quote_id"],
        grpc_quote.quotes[0].quote_id,
    ):
        assert _context_of(clients, quote_id) == '["CN-31",[],["spring"]]'

    # Naming a promotion that was never published: refused the same way on both transports.
    resp = _quote_http(clients, item, ["black-friday"])
    g = grpc_error(
        clients.pricing.QuotePrices,
        pricing_pb2.QuotePricesRequest(item_ids=[item], promotions=["black-friday"]),
        metadata=clients.md(),
    )
    assert resp.status_code == 404 and g["code"] == "NOT_FOUND"
    assert http_error(resp)["field"] == g["field"] == "promotions"
    assert "'black-friday' is not published" in g["message"]

    ended = clients.admin.EndPromotion(
        admin_pb2.EndPromotionRequest(name="spring", reason="campaign over"),
        metadata=clients.md("pricing"),
    )
    assert ended.version == 2 and ended.action == "end" and not ended.promotion.running
    resp = _quote_http(clients, item, ["spring"])
    assert resp.status_code == 409 and "'spring' is not running" in http_error(resp)["message"]
    after = _quote_http(clients, item, [])
    assert _context_of(clients, after.json()["quotes"][0]["quote_id"]) == '["CN-31",[],[]]'

    assert server.pricing is not None
    changes = [r.payload for r in server.pricing.audit.records() if r.kind == "promotion_changed"]
    assert [(c["action"], c["reason"], c["actor"]) for c in changes] == [
        ("publish", "seasonal campaign", "role:pricing"),
        ("end", "campaign over", "role:pricing"),
    ]


def test_publishing_errors_are_the_same_on_both_transports(clients: Clients) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"title": "t", "description": "d", "reason": "r"}, "ends_at", "ends_at is required"),
        (
            {"title": "", "description": "d", "ends_at": later, "reason": "r"},
            "title",
            "needs a public title",
        ),
        ({"title": "t", "description": "d", "ends_at": later}, "reason", "reason is required"),
    ]
    for body, field, message in cases:
        resp = clients.http.put("/v1/promotions/autumn", json=body, headers=clients.hdr("pricing"))
        g = grpc_error(
            clients.admin.PublishPromotion,
            admin_pb2.PublishPromotionRequest(name="autumn", **body),
            metadata=clients.md("pricing"),
        )
        assert resp.status_code == 400, resp.text
        assert g == http_error(resp) and g["field"] == field and message in g["message"]
    resp = clients.http.post(
        "/v1/promotions/nothing/end", json={"reason": "r"}, headers=clients.hdr("pricing")
    )
    assert resp.status_code == 404 and http_error(resp)["field"] == "name"
