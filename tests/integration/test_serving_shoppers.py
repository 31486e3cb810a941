"""Quotes through a running server are logged under the shopper's real tenure and
order-frequency bands (derived from the bundle and the event log, not sent by the storefront),
so the G4 audit can compare loyal and new shoppers; the device only as a coarse class."""

from __future__ import annotations

from datetime import UTC, datetime

from serving_support import Clients

from pricing.fairness.consistency import audit_quotes
from proto.fairshelf.v1 import recommendations_pb2
from serving.app import FairshelfServer
from serving.shopper_facts import coarse_device


def test_device_is_kept_only_as_a_coarse_class() -> None:
    assert coarse_device("iOS") == "ios"
    assert coarse_device("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)") == "ios"
    assert coarse_device("Android 14; Pixel 8") == "android"
    assert coarse_device("") == "unknown"
    assert coarse_device("smart-fridge-serial-123") == "other"


def _loyal_user(server: FairshelfServer) -> tuple[str, int]:
    bundle = server.holder.require().bundle
    per_user = bundle.interactions.groupby("user_index")["purchases"].sum()
    u = int(per_user.to_numpy().argmax())
    return str(bundle.user_ids[int(per_user.index[u])]), int(per_user.iloc[u])


def test_loyal_and_new_shoppers_are_logged_in_their_bands(
    server: FairshelfServer, clients: Clients
) -> None:
    loyal, n_orders = _loyal_user(server)
    assert n_orders >= 5  # the tiny store has frequent buyers
    item = str(server.holder.require().bundle.item_ids[7])
    # A shopper unknown to the bundle who has since bought in 5 sessions (event log).
    now = datetime.now(UTC).isoformat()
    events = [
        {
            "event_id": f"late-buyer-{i}",
            "user_id": "late-buyer",
            "item_id": item,
            "event_type": "purchase",
            "timestamp": now,
            "quantity": 1,
            "unit_price": 9.5,
            "session_id": f"late-buyer-s{i}",
        }
        for i in range(5)
    ]
    logged = clients.http.post("/v1/events", json={"events": events}, headers=clients.hdr())
    assert logged.status_code == 200 and logged.json()["accepted"] == 5
    # The storefront sends only ids: tenure and orders come from the server's own facts.
    for user, device in ((loyal, "iPhone"), ("late-buyer", "android"), ("brand-new", "")):
        resp = clients.http.post(
            "/v1/prices/quote",
            json={"item_ids": [item], "shopper": {"user_id": user, "device": device}},
            headers=clients.hdr(),
        )
        assert resp.status_code == 200, resp.text
    # Recommend with prices, over gRPC, for the loyal shopper: same derived bands.
    rec = clients.recs.Recommend(
        recommendations_pb2.RecommendRequest(user_id=loyal, k=3, include_prices=True, device="web"),
        metadata=clients.md(),
    )
    assert all(it.HasField("quote") for it in rec.items)
    assert server.pricing is not None and server.pricing.quotes is not None
    server.pricing.quotes.flush()
    logged_quotes = list(server.pricing.quote_log.iter_quotes())
    groups = {(q.group.tenure, q.group.frequency, q.group.device) for q in logged_quotes}
    # The bundle's data is months old: the loyal shopper has tenure beyond the new band.
    assert ("regular", "frequent", "ios") in groups or ("long", "frequent", "ios") in groups
    assert ("new", "none", "unknown") in groups
    assert any(t != "new" and f == "frequent" and d == "android" for t, f, d in groups)
    assert any(d == "web" and f == "frequent" for _, f, d in groups)
    # The G4 audit now has both an existing and a new customer in the item's group to compare.
    summary = audit_quotes(q for q in logged_quotes if q.item_id == item)
    compared = [g for g in summary.groups if g.existing_max is not None and g.new_min is not None]
    assert compared, "no (item, epoch, context) group held both a loyal and a new shopper"
    assert all(g.existing_max[0] <= g.new_min[0] for g in compared if g.existing_max and g.new_min)
    assert not summary.g4
