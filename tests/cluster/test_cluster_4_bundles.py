"""Hot reload on shared storage: a bundle published once is loaded by every replica within two
poll intervals, a broken one is refused by every replica (the last good one keeps serving) and
Prometheus raises the refused-reload alert for each."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from cluster_topology import POLL_SECONDS, Cluster, Replica, wait_for
from conftest import Shop

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
    """Seconds until ``predicate(replica)`` held, per replica, polling all of them together."""
    started = time.monotonic()
    seen: dict[str, float] = {}
    while len(seen) < len(replicas) and time.monotonic() - started < timeout:
        for r in replicas:
            if r.name not in seen and predicate(r):
                seen[r.name] = time.monotonic() - started
        time.sleep(0.05)
    return seen


def test_bundle_published_once_reaches_every_replica(cluster: Cluster, shop: Shop) -> None:
    current = resolve_current(cluster.bundles)
    assert current is not None
    good = _copy(current, cluster.bundles / "cluster-next", "cluster-next")
    set_current(cluster.bundles, good)
    loaded = _first_seen(cluster.replicas,
                         lambda r: r.get("/v1/model")["model_version"] == "cluster-next", 30)  # fmt: skip
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
        return {a["labels"]["instance"] for a in alerts
                if a["labels"]["alertname"] == "FairshelfBundleRefused"
                and a["state"] == "firing"} == {f"127.0.0.1:{r.http_port}" for r in cluster.replicas}  # fmt: skip

    wait_for(alerted, 20, "FairshelfBundleRefused firing for every replica", step=0.5)
    # Back to the good bundle: nothing to load, nothing refused again.
    set_current(cluster.bundles, good)
    time.sleep(2 * POLL_SECONDS)
    assert all(_refused(r) == before[r.name] + 1 for r in cluster.replicas)


def _round(seen: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in seen.items()}
