"""Rule G3 across replicas: a guardrail changed through one replica is in force on all three by
the next price epoch; in an epoch every replica quotes an item the same list price; the audit
chain that three replicas append to concurrently verifies."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import httpx
from cluster_topology import EPOCH_SECONDS, POLL_SECONDS, Cluster, Replica, Shop
from serving_support import KEYS

# Items no other test quotes: each is asked once, on one replica, so a probe pins nothing that
# another replica could price differently.
_PROBES_PER_REPLICA = 25


def _quote(replica: Replica, items: list[str]) -> dict[str, dict]:  # type: ignore[type-arg]
    resp = replica.post("/v1/prices/quote", {"item_ids": items})
    assert resp.status_code == 200, resp.text
    return {q["item_id"]: q for q in resp.json()["quotes"]}


def _toggle_optouts(replica: Replica, users: list[str]) -> None:
    with httpx.Client(base_url=replica.url, timeout=10) as http:
        for n, user in enumerate(users * 2):
            resp = http.put(
                f"/v1/shoppers/{user}/personalization",
                json={"enabled": n % 2 == 1},
                headers={"x-api-key": KEYS["storefront"]},
            )
            assert resp.status_code == 200, resp.text


def test_guardrail_change_is_in_force_everywhere_by_the_next_epoch(
    cluster: Cluster, shop: Shop
) -> None:
    replicas = cluster.replicas
    item = shop.items[7]
    fresh = shop_fresh_items(cluster, shop)
    writer = replicas[1]
    resp = httpx.put(
        f"{writer.url}/v1/guardrails/item:{item}",
        json={"values": {"max_change_pct": 0.35}, "reason": "cluster propagation check"},
        headers={"x-api-key": KEYS["pricing"]},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    version = resp.json()["version"]
    changed = time.monotonic()
    changed_epoch = int(datetime.now(UTC).timestamp()) // EPOCH_SECONDS
    next_start = datetime.fromtimestamp((changed_epoch + 1) * EPOCH_SECONDS, UTC)
    to_next_epoch = (next_start - datetime.now(UTC)).total_seconds()
    # Propagation: the first quote of a never-quoted item carries the guardrail set in force.
    # Each replica is probed by its own thread, so one slow answer delays no other replica.
    seen: dict[str, float] = {}

    def probe(n: int, replica: Replica) -> None:
        for fresh_item in fresh[n * _PROBES_PER_REPLICA : (n + 1) * _PROBES_PER_REPLICA]:
            sent = time.monotonic()
            quote = _quote(replica, [fresh_item])[fresh_item]
            if str(quote["guardrail_version"]).endswith(f"@{version}"):
                seen[replica.name] = sent - changed
                return
            time.sleep(0.1)

    probes = [threading.Thread(target=probe, args=(n, r)) for n, r in enumerate(replicas)]
    for t in probes:
        t.start()
    for t in probes:
        t.join()
    assert len(seen) == 3, f"guardrail v{version} not in force everywhere: {seen}"
    # Meanwhile three replicas append to the one audit chain at once.
    togglers = [
        threading.Thread(target=_toggle_optouts, args=(r, shop.users[20 + 3 * i : 23 + 3 * i]))
        for i, r in enumerate(replicas)
    ]
    for t in togglers:
        t.start()
    for t in togglers:
        t.join()
    # The next epoch: the changed item and the load's items, asked of every replica.
    time.sleep(max(0.0, (next_start - datetime.now(UTC)).total_seconds()) + 0.5)
    asked = [item, *shop.items[10:20]]
    answers = [_quote(r, asked) for r in replicas]
    for it in asked:
        prices = {a[it]["list_price"] for a in answers}
        epochs = {a[it]["price_epoch"] for a in answers}
        assert len(prices) == 1 and len(epochs) == 1, (it, prices, epochs)
    assert all(str(a[item]["guardrail_version"]).endswith(f"@{version}") for a in answers)
    # The fairness audit over the quote log of all three replicas, from that epoch on.
    since = next_start.strftime("%Y-%m-%dT%H:%M:%SZ")
    report = replicas[2].get(f"/v1/audit/report?since={since}")["report"]
    whole = replicas[0].get("/v1/audit/report")["report"]
    print(
        f"\n[guardrails] v{version} in force after "
        f"{ {k: round(v, 2) for k, v in seen.items()} } s; next epoch began "
        f"{to_next_epoch:.0f} s after the change; G3 violations since then "
        f"{report['g3_violations']}, over the whole run "
        f"{whole['g3_violations']}; chain {whole['chain']['records']} records ok="
        f"{whole['chain']['ok']}"
    )
    assert max(seen.values()) <= 2 * POLL_SECONDS
    assert report["g3_violations"] == 0
    assert whole["chain"]["ok"] is True, whole["chain"]


def shop_fresh_items(cluster: Cluster, shop: Shop) -> list[str]:
    """Catalogue items outside the load's set (never quoted so far)."""
    from recsys.bundle import load_bundle

    items = [str(i) for i in load_bundle(cluster.bundles / "current").item_ids]
    fresh = [i for i in items if i not in set(shop.items)]
    assert len(fresh) >= 3 * _PROBES_PER_REPLICA
    return fresh
