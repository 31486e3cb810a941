"""Prometheus scrapes all three replicas with the project's alert rules loaded; the
fairness-violation rule stays quiet while the cluster has served quotes under load."""

from __future__ import annotations

from typing import Any

from cluster_topology import Cluster, Shop, wait_for


def _rule(prom: Any, name: str) -> dict[str, Any]:
    for group in prom.api("rules")["groups"]:
        for rule in group["rules"]:
            if rule["name"] == name:
                return dict(rule)
    raise AssertionError(f"rule {name} is not loaded")


def test_prometheus_sees_every_replica_and_no_fairness_violation(
    cluster: Cluster, shop: Shop
) -> None:
    prom = cluster.prometheus
    wanted = {f"127.0.0.1:{r.http_port}" for r in cluster.replicas}

    def all_up() -> bool:
        targets = prom.api("targets")["activeTargets"]
        up = {
            t["labels"]["instance"]
            for t in targets
            if t["labels"]["job"] == "fairshelf" and t["health"] == "up"
        }
        return up == wanted

    wait_for(all_up, 30, "prometheus scrapes all three replicas")
    # The fairness guard's counters are exported by every replica.
    result = prom.api("query?query=sum by (instance) (fairshelf_quotes_guarded_total)")["result"]
    assert {r["metric"]["instance"] for r in result} == wanted, result
    rule = _rule(prom, "FairshelfFairnessViolation")
    assert rule["health"] == "ok", rule
    assert rule["state"] == "inactive" and not rule["alerts"], rule
    alerts = prom.api("alerts")["alerts"]
    assert not [a for a in alerts if a["labels"]["alertname"] == "FairshelfFairnessViolation"]
    # Every rule evaluates (a typo in a metric would still be "ok", but a bad query is not).
    for group in prom.api("rules")["groups"]:
        for r in group["rules"]:
            assert r["health"] == "ok", r
