"""The pricing team's guardrail workflow over both transports: set, read, change, roll back,
history and an item's effective guardrail, with the pricing role; a storefront key may not.

A real server (SQLite, gRPC and HTTP on loopback) runs the whole module; every change must
also land in the hash-chained audit log and be put in force in the running fairness guard.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from serving_support import Clients, grpc_error, http_error

from proto.fairshelf.v1 import admin_pb2
from serving.app import FairshelfServer


def _item_and_category(server: FairshelfServer, n: int) -> tuple[str, str]:
    items = server.holder.require().bundle.items
    row = items.iloc[n]
    return str(row["item_id"]), str(row["category"])


def _effective_http(clients: Clients, item_id: str) -> dict[str, Any]:
    resp = clients.http.get(f"/v1/items/{item_id}/guardrail", headers=clients.hdr("pricing"))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _effective_grpc(clients: Clients, item_id: str) -> dict[str, Any]:
    msg = clients.admin.GetEffectiveGuardrail(
        admin_pb2.EffectiveGuardrailRequest(item_id=item_id), metadata=clients.md("pricing")
    )
    return MessageToDict(msg, preserving_proto_field_name=True)


def _same_effective(http: dict[str, Any], grpc_view: dict[str, Any]) -> None:
    # proto3 leaves unset optionals out and renders int64 as a string in JSON form.
    assert int(grpc_view["version"]) == http["version"]
    for key, value in http.items():
        if key == "version":
            continue
        if value is None:
            assert key not in grpc_view, key
        else:
            assert grpc_view[key] == value, key


def test_pricing_team_sets_reads_changes_and_rolls_back(
    server: FairshelfServer, clients: Clients
) -> None:
    item_id, category = _item_and_category(server, 5)
    top = category.split("/")[0]
    # 1. set (HTTP): a global change limit and price ending.
    put1 = clients.http.put(
        "/v1/guardrails/global",
        json={"values": {"max_change_pct": 0.2, "price_ending": ".99"}, "reason": "launch"},
        headers=clients.hdr("pricing"),
    )
    assert put1.status_code == 200, put1.text
    v1 = put1.json()["version"]
    # 2. set (gRPC): a category margin.
    put2 = clients.admin.PutGuardrails(
        admin_pb2.PutGuardrailsRequest(
            scope=f"category:{top}",
            values=admin_pb2.GuardrailValues(min_margin=0.05),
            reason="margin for the category",
        ),
        metadata=clients.md("pricing"),
    )
    assert put2.version == v1 + 1
    # 3. read the item's effective guardrail on both transports: narrowest scope per field.
    eff = _effective_http(clients, item_id)
    _same_effective(eff, _effective_grpc(clients, item_id))
    assert eff["version"] == put2.version
    assert eff["max_change_pct"] == 0.2 and eff["price_ending"] == "0.99"
    assert eff["min_margin"] == 0.05
    assert eff["sources"]["min_margin"] == f"category:{top}"
    assert eff["sources"]["max_change_pct"] == "global"
    # 4. change (HTTP): loosen the global change limit.
    put3 = clients.http.put(
        "/v1/guardrails/global",
        json={
            "values": {"max_change_pct": 0.5},
            "reason": "too tight",
            "expected_version": put2.version,
        },
        headers=clients.hdr("pricing"),
    )
    assert put3.status_code == 200, put3.text
    v3 = put3.json()["version"]
    assert _effective_http(clients, item_id)["max_change_pct"] == 0.5
    # 5. roll back (gRPC) to version 1: the content of v1 becomes a new version.
    change = clients.admin.RollbackGuardrails(
        admin_pb2.RollbackGuardrailsRequest(
            version=v1, reason="revert to launch", expected_version=v3
        ),
        metadata=clients.md("pricing"),
    )
    assert change.version == v3 + 1
    assert change.action == f"rollback:{v1}" and change.author == "role:pricing"
    changed = {(d["scope"], d["field"]) for d in (MessageToDict(s) for s in change.diff)}
    assert ("global", "max_change_pct") in changed and (f"category:{top}", "min_margin") in changed
    eff = _effective_http(clients, item_id)
    _same_effective(eff, _effective_grpc(clients, item_id))
    assert eff["version"] == change.version
    assert eff["max_change_pct"] == 0.2 and eff["min_margin"] != 0.05
    assert eff["sources"]["min_margin"] == "default"
    # The running guard has the rolled-back set in force at once.
    assert server.pricing is not None and server.pricing.quotes is not None
    assert server.pricing.quotes.guardrails.version == change.version
    quote = clients.http.post(
        "/v1/prices/quote", json={"item_ids": [item_id]}, headers=clients.hdr("pricing")
    ).json()["quotes"][0]
    assert quote["guardrail_version"].endswith(f"@{change.version}")
    # 6. history on both transports: same changes, newest first, who/when/why/diff.
    h = clients.http.get("/v1/guardrails/history", headers=clients.hdr("pricing"))
    assert h.status_code == 200, h.text
    hist = h.json()
    g = clients.admin.GetGuardrailHistory(
        admin_pb2.GuardrailHistoryRequest(), metadata=clients.md("pricing")
    )
    assert hist["version"] == g.version == change.version
    assert [c["version"] for c in hist["changes"]] == [c.version for c in g.changes]
    assert [c["version"] for c in hist["changes"][:4]] == [v3 + 1, v3, v1 + 1, v1]
    assert [c["reason"] for c in hist["changes"][:4]] == [
        "revert to launch",
        "too tight",
        "margin for the category",
        "launch",
    ]
    for hc, gc in zip(hist["changes"], g.changes, strict=True):
        assert (hc["at"], hc["author"], hc["action"], hc["scope"]) == (
            gc.at,
            gc.author,
            gc.action,
            gc.scope,
        )
        assert hc["diff"] == [MessageToDict(s) for s in gc.diff]
    limited = clients.http.get(
        "/v1/guardrails/history", params={"limit": 1}, headers=clients.hdr("admin")
    ).json()
    assert [c["version"] for c in limited["changes"]] == [change.version]
    # 7. every change is in the hash-chained audit log, with its reason, and the chain holds.
    records = [r for r in server.pricing.audit.records() if r.kind == "guardrail_changed"]
    reasons = [r.payload["reason"] for r in records]
    assert reasons[-4:] == ["launch", "margin for the category", "too tight", "revert to launch"]
    assert records[-1].payload["version"] == change.version
    assert records[-1].payload["changes"] == hist["changes"][0]["diff"]
    report = clients.http.get("/v1/audit/report", headers=clients.hdr("pricing")).json()
    assert report["report"]["chain"]["ok"] is True


def test_storefront_key_may_not_touch_guardrails(server: FairshelfServer, clients: Clients) -> None:
    item_id, _ = _item_and_category(server, 2)
    before = server.pricing.store.current().version if server.pricing else 0
    writes: list[tuple[Any, Any, str, str, dict[str, Any]]] = [
        (
            clients.admin.PutGuardrails,
            admin_pb2.PutGuardrailsRequest(scope="global", reason="x"),
            "PUT",
            "/v1/guardrails/global",
            {"values": {"floor": 1.0}, "reason": "x"},
        ),
        (
            clients.admin.RollbackGuardrails,
            admin_pb2.RollbackGuardrailsRequest(version=0, reason="x"),
            "POST",
            "/v1/guardrails/rollback",
            {"version": 0, "reason": "x"},
        ),
    ]
    for stub, request, method, path, body in writes:
        g = grpc_error(stub, request, metadata=clients.md("storefront"))
        resp = clients.http.request(method, path, json=body, headers=clients.hdr("storefront"))
        assert resp.status_code == 403, resp.text
        assert g == http_error(resp) and g["code"] == "PERMISSION_DENIED"
    reads: list[tuple[Any, Any, str]] = [
        (
            clients.admin.GetGuardrailHistory,
            admin_pb2.GuardrailHistoryRequest(),
            "/v1/guardrails/history",
        ),
        (
            clients.admin.GetEffectiveGuardrail,
            admin_pb2.EffectiveGuardrailRequest(item_id=item_id),
            f"/v1/items/{item_id}/guardrail",
        ),
    ]
    for stub, request, path in reads:
        g = grpc_error(stub, request, metadata=clients.md("storefront"))
        resp = clients.http.get(path, headers=clients.hdr("storefront"))
        assert resp.status_code == 403 and g == http_error(resp)
    assert server.pricing is not None and server.pricing.store.current().version == before


def test_rollback_errors_are_the_same_on_both_transports(clients: Clients) -> None:
    cases: list[tuple[Any, dict[str, Any], int, str, str]] = [
        (
            admin_pb2.RollbackGuardrailsRequest(reason="x"),
            {"reason": "x"},
            400,
            "INVALID_ARGUMENT",
            "version",
        ),
        (
            admin_pb2.RollbackGuardrailsRequest(version=999, reason="x"),
            {"version": 999, "reason": "x"},
            404,
            "NOT_FOUND",
            "version",
        ),
        (
            admin_pb2.RollbackGuardrailsRequest(version=0, reason=" "),
            {"version": 0, "reason": " "},
            400,
            "INVALID_ARGUMENT",
            "reason",
        ),
    ]
    for request, body, status, code, field in cases:
        g = grpc_error(clients.admin.RollbackGuardrails, request, metadata=clients.md("pricing"))
        resp = clients.http.post(
            "/v1/guardrails/rollback", json=body, headers=clients.hdr("pricing")
        )
        assert resp.status_code == status, resp.text
        assert g == http_error(resp)
        assert (g["code"], g["field"]) == (code, field)
    g = grpc_error(
        clients.admin.GetEffectiveGuardrail,
        admin_pb2.EffectiveGuardrailRequest(item_id="no-such-item"),
        metadata=clients.md("pricing"),
    )
    resp = clients.http.get("/v1/items/no-such-item/guardrail", headers=clients.hdr("pricing"))
    assert resp.status_code == 404 and g == http_error(resp) and g["field"] == "item_id"


def test_pricing_team_deletes_a_scope_rule_on_both_transports(
    server: FairshelfServer, clients: Clients
) -> None:
    item_id, category = _item_and_category(server, 11)
    top = category.split("/")[0]
    scope = f"item:{item_id}"
    put = clients.http.put(
        f"/v1/guardrails/{scope}",
        json={"values": {"min_margin": 0.3}, "reason": "hold the margin during the promo"},
        headers=clients.hdr("pricing"),
    )
    assert put.status_code == 200, put.text
    assert _effective_http(clients, item_id)["sources"]["min_margin"] == scope
    # Delete over HTTP (reason and optimistic version as query parameters).
    resp = clients.http.delete(
        f"/v1/guardrails/{scope}",
        params={"reason": "promo over", "expected_version": put.json()["version"]},
        headers=clients.hdr("pricing"),
    )
    assert resp.status_code == 200, resp.text
    change = resp.json()
    assert change["version"] == put.json()["version"] + 1
    assert (change["action"], change["scope"], change["author"]) == (
        "delete",
        scope,
        "role:pricing",
    )
    assert {(d["scope"], d["field"]) for d in change["diff"]} >= {(scope, "min_margin")}
    eff = _effective_http(clients, item_id)
    _same_effective(eff, _effective_grpc(clients, item_id))
    assert eff["sources"]["min_margin"] != scope
    # In force in the running guard at once.
    assert server.pricing is not None and server.pricing.quotes is not None
    assert server.pricing.quotes.guardrails.version == change["version"]

    # The same over gRPC, for a category rule.
    put2 = clients.admin.PutGuardrails(
        admin_pb2.PutGuardrailsRequest(
            scope=f"category:{top}",
            values=admin_pb2.GuardrailValues(min_margin=0.07),
            reason="category margin",
        ),
        metadata=clients.md("pricing"),
    )
    assert _effective_grpc(clients, item_id)["sources"]["min_margin"] == f"category:{top}"
    gone = clients.admin.DeleteGuardrails(
        admin_pb2.DeleteGuardrailsRequest(
            scope=f"category:{top}", reason="back to the global margin"
        ),
        metadata=clients.md("pricing"),
    )
    assert (gone.version, gone.action) == (put2.version + 1, "delete")
    assert gone.scope == f"category:{top}"
    eff = _effective_grpc(clients, item_id)
    assert eff["sources"]["min_margin"] not in (scope, f"category:{top}")
    history = clients.http.get("/v1/guardrails/history", headers=clients.hdr("pricing")).json()
    assert [(c["action"], c["reason"]) for c in history["changes"][:2]] == [
        ("delete", "back to the global margin"),
        ("put", "category margin"),
    ]


def test_delete_errors_and_roles_are_the_same_on_both_transports(
    server: FairshelfServer, clients: Clients
) -> None:
    item_id, _ = _item_and_category(server, 12)
    cases: list[tuple[str, str, str | None, int, str, str]] = [
        # scope, reason, role -> HTTP status, gRPC code, field
        (f"item:{item_id}", "nothing to remove", "pricing", 404, "NOT_FOUND", "scope"),
        ("global", "", "pricing", 400, "INVALID_ARGUMENT", "reason"),
    ]
    for scope, reason, role, status, code, field in cases:
        g = grpc_error(
            clients.admin.DeleteGuardrails,
            admin_pb2.DeleteGuardrailsRequest(scope=scope, reason=reason),
            metadata=clients.md(role),
        )
        resp = clients.http.delete(
            f"/v1/guardrails/{scope}", params={"reason": reason}, headers=clients.hdr(role)
        )
        assert resp.status_code == status, resp.text
        assert g == http_error(resp)
        assert (g["code"], g["field"]) == (code, field)
    # A storefront key may not delete; nothing changes.
    before = clients.http.get("/v1/guardrails/history", headers=clients.hdr("pricing")).json()
    g = grpc_error(
        clients.admin.DeleteGuardrails,
        admin_pb2.DeleteGuardrailsRequest(scope="global", reason="x"),
        metadata=clients.md("storefront"),
    )
    resp = clients.http.delete(
        "/v1/guardrails/global", params={"reason": "x"}, headers=clients.hdr("storefront")
    )
    assert resp.status_code == 403 and g["code"] == "PERMISSION_DENIED"
    after = clients.http.get("/v1/guardrails/history", headers=clients.hdr("pricing")).json()
    assert after["version"] == before["version"]
