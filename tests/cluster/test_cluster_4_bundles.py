"""Hot reload on shared storage: a bundle published once is loaded by every replica within two
poll intervals, a broken one is refused by every replica (the last good one keeps serving) and
Prometheus raises the refused-reload alert for each."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path

from cluster_topology import POLL_SECONDS, Cluster, Replica, Shop, wait_for

from recsys.bundle import set_current
from serving.reload import resolve_current

_REFUSED = re.compile(r'^fairshelf_bundle_reloads_total\{outcome="refused"\} (\S+)$', re.M)


def _refused(replica: Replica) -> float:
    match = _REFUSED.search(str(replica.get("/metrics")))
    return float(match.group(1)) if match else 0.0


def _copy(current: Path, dest: Path, bundle_id: str) -> Path:
    shutil.copytree(current, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["bundle_id"] = bundle_id
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def _first_seen(replicas: list[Replica], predicate, timeout: float) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Seconds from now until ``predicate(replica)`` first held, per replica: each replica is
    polled by its own thread (a slow answer from one must not delay the others), and the time
    is taken when the successful poll was sent."""
    started = time.monotonic()
    seen: dict[str, float] = {}

    def poll(r: Replica) -> None:
        while time.monotonic() - started < timeout:
            sent = time.monotonic()
            if predicate(r):
                seen[r.name] = sent - started
                return
            time.sleep(0.05)

    threads = [threading.Thread(target=poll, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return seen


def _loaded_at(replica: Replica, bundle_id: str) -> float | None:
    """When the replica swapped ``bundle_id`` in (Unix time), from its own gauge."""
    pattern = rf'^fairshelf_bundle_loaded_timestamp_seconds\{{bundle_id="{bundle_id}"\}} (\S+)$'
    match = re.search(pattern, str(replica.get("/metrics")), re.M)
    return float(match.group(1)) if match else None


def test_bundle_published_once_reaches_every_replica(cluster: Cluster, shop: Shop) -> None:
    current = resolve_current(cluster.bundles)
    assert current is not None
    good = _copy(current, cluster.bundles / "cluster-next", "cluster-next")
    published = time.time()
    set_current(cluster.bundles, good)
    _first_seen(cluster.replicas, lambda r: _loaded_at(r, "cluster-next") is not None, 30)
    # The swap time each replica recorded itself, against the time of publication.
    loaded = {
        r.name: (_loaded_at(r, "cluster-next") or float("inf")) - published
        for r in cluster.replicas
    }
    before = {r.name: _refused(r) for r in cluster.replicas}
    broken = _copy(good, cluster.bundles / "cluster-broken", "cluster-broken")
    (broken / "items.parquet").unlink()
    set_current(cluster.bundles, broken)
    refused = _first_seen(cluster.replicas, lambda r: _refused(r) == before[r.name] + 1, 30)
    print(
        f"\n[bundles] poll {POLL_SECONDS} s; loaded after {_round(loaded)} s; broken one refused "
        f"after {_round(refused)} s"
    )
    assert len(loaded) == 3 and max(loaded.values()) <= 2 * POLL_SECONDS, loaded
    assert len(refused) == 3 and max(refused.values()) <= 2 * POLL_SECONDS, refused
    for r in cluster.replicas:
        assert r.get("/v1/model")["model_version"] == "cluster-next"
        assert r.ready()

    # Prometheus raises the refused-reload alert for each replica.
    def alerted() -> bool:
        alerts = cluster.prometheus.api("alerts")["alerts"]
        return {
            a["labels"]["instance"]
            for a in alerts
            if a["labels"]["alertname"] == "FairshelfBundleRefused" and a["state"] == "firing"
        } == {f"127.0.0.1:{r.http_port}" for r in cluster.replicas}

    wait_for(alerted, 20, "FairshelfBundleRefused firing for every replica", step=0.5)
    # Back to the good bundle: nothing to load, nothing refused again.
    set_current(cluster.bundles, good)
    time.sleep(2 * POLL_SECONDS)
    assert all(_refused(r) == before[r.name] + 1 for r in cluster.replicas)


def _round(seen: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in seen.items()}
