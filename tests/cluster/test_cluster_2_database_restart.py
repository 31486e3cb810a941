"""PostgreSQL restarted under load: writes answer UNAVAILABLE / 503 while it is down (never
500, never a hang), Recommend keeps answering without personalizing an opted-out shopper,
quotes follow the quote log's rule (served quotes are buffered and stored once the database is
back; a quote that could not be logged is refused), and afterwards every acknowledged event is
stored exactly once."""

from __future__ import annotations

import time
from collections import Counter

import httpx
from cluster_load import TIMEOUT, SteadyLoad
from cluster_topology import Cluster, Shop, wait_for
from serving_support import KEYS

OUTAGE_SECONDS = 5.0
# What a caller may see while the database is down; anything else (INTERNAL, 500, a timeout,
# haproxy's own 502/504) is a failure of the service.
WRITE_CODES = {"OK", "UNAVAILABLE"}


def _direct_checks(cluster: Cluster, shop: Shop) -> None:
    """On each replica directly, mid-outage: recommend works and respects the opt-out; an event
    batch and an opt-out change answer 503 UNAVAILABLE."""
    for replica in cluster.replicas:
        rec = replica.post("/v1/recommend", {"user_id": shop.opted_out[0], "k": 5})
        assert rec.status_code == 200 and rec.json()["personalized"] is False, rec.text
        known = replica.post("/v1/recommend", {"user_id": shop.users[-1], "k": 5})
        # Not personalized either: without the database no opt-out can be checked.
        assert known.status_code == 200 and known.json()["personalized"] is False, known.text
        event = {
            "event_id": f"outage-{replica.name}",
            "user_id": shop.users[5],
            "item_id": shop.items[0],
            "event_type": "view",
            "unit_price": 9.99,
        }
        resp = replica.post("/v1/events", {"events": [event]})
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "UNAVAILABLE"
        put = httpx.put(
            f"{replica.url}/v1/shoppers/{shop.users[6]}/personalization",
            json={"enabled": False},
            headers={"x-api-key": KEYS["storefront"]},
            timeout=TIMEOUT,
        )
        assert put.status_code == 503, put.text


def test_database_restart_under_load(cluster: Cluster, shop: Shop) -> None:
    load = SteadyLoad(
        cluster.http_url,
        cluster.grpc_target,
        shop.users,
        shop.items,
        shop.opted_out,
        threads=3,
        tag="pg",
    )
    with load:
        time.sleep(2.0)
        down_at = time.monotonic()
        cluster.pg.stop("fast")
        stopped_after = time.monotonic() - down_at
        time.sleep(1.0)
        _direct_checks(cluster, shop)
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        up_at = time.monotonic()
        cluster.pg.start()
        started_after = time.monotonic() - up_at

        def writes_ok() -> bool:
            return any(
                c.op == "events" and c.ok and c.started > up_at + started_after
                for c in load.ledger.snapshot()
            )

        recovered = wait_for(writes_ok, 30, "writes succeed after the restart")
        time.sleep(1.0)
    calls = load.ledger.snapshot()
    outage = [c for c in calls if down_at <= c.started < up_at + started_after]
    by_op = {op: Counter(c.code for c in outage if c.op == op) for op in ("rec", "events", "quote")}
    slowest = max(c.ended - c.started for c in calls)
    duplicates = load.resend_unacked()
    print(
        f"\n[postgres restart] stop {stopped_after:.1f} s, down {up_at - down_at:.1f} s, start "
        f"{started_after:.1f} s, writes back {recovered:.1f} s later; calls during the outage: "
        f"{ {k: dict(v) for k, v in by_op.items()} }; slowest call {slowest * 1000:.0f} ms; "
        f"{duplicates} resent duplicates"
    )
    assert slowest < TIMEOUT
    assert set(by_op["events"]) <= WRITE_CODES and by_op["events"]["UNAVAILABLE"] > 0
    assert set(by_op["rec"]) == {"OK"}, by_op["rec"]
    assert set(by_op["quote"]) <= WRITE_CODES, by_op["quote"]
    assert not [c for c in calls if c.user in shop.opted_out and c.personalized]
    # Personalization comes back with the database.
    assert any(c.personalized for c in calls if c.started > up_at + recovered)
    # Every served quote reaches the quote log (buffered through the outage).
    served = {q for c in calls for q in c.quote_ids}

    def quotes_stored() -> bool:
        ids = list(served)
        rows = cluster.sql("SELECT count(*) FROM quote_log WHERE quote_id = ANY(:ids)", ids=ids)
        return rows[0][0] == len(ids)

    wait_for(quotes_stored, 20, "served quotes stored", step=0.5)
    # Every acknowledged event stored, exactly once.
    rows = cluster.sql(
        "SELECT event_id, count(*) FROM events WHERE event_id LIKE 'pg-%' GROUP BY event_id"
    )
    assert all(n == 1 for _, n in rows)
    assert {r[0] for r in rows} == load.ledger.acked
