"""deploy/prometheus/alerts.yml: valid for promtool, each alert proven by its fixtures, and every
metric it reads really exported by the server (serving.metrics, pricing.fairness.metrics)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from debian_tools import binary
from prometheus_client import REGISTRY

import pricing.fairness.metrics  # noqa: F401  (registers the fairness counters)
from serving.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = DEPLOY / "alerts.yml"
ALERTS = {
    "FairshelfLatencyP99High",
    "FairshelfErrorRateHigh",
    "FairshelfFairnessViolation",
    "FairshelfBundleStale",
    "FairshelfBundleRefused",
    "FairshelfEventIngestionStalled",
    "FairshelfReplicaDown",
}
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
}


def _exported_names() -> set[str]:
    names: set[str] = set()
    for registry in (Metrics().registry, REGISTRY):
        for family in registry.collect():
            for suffix in _SUFFIXES.get(family.type, ("",)):
                names.add(family.name + suffix)
    return names


def test_promtool_accepts_the_rules() -> None:
    out = subprocess.run(
        [str(binary("promtool")), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in out.stdout


def test_every_alert_fires_on_its_fixture_and_not_on_healthy_series() -> None:
    fixtures = DEPLOY / "alerts_test.yml"
    out = subprocess.run(
        [str(binary("promtool")), "test", "rules", str(fixtures)],
        capture_output=True,
        text=True,
        check=False,
        cwd=DEPLOY,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # Every alert has at least one fixture that expects it to fire.
    tested = set(re.findall(r"alertname: (\w+)", fixtures.read_text()))
    assert tested == ALERTS


def test_rules_read_only_metrics_the_server_exports() -> None:
    text = RULES.read_text()
    assert set(re.findall(r"alert: (\w+)", text)) == ALERTS
    used = set(re.findall(r"\bfairshelf_\w+", text))
    assert used, "no fairshelf metric in the rules"
    assert used <= _exported_names(), sorted(used - _exported_names())
