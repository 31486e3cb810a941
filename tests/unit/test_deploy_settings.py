"""deploy/ and docs/deploy.md against serving/settings.py: every FAIRSHELF_* variable they name
is a real setting, the Kubernetes ConfigMap and Secret template load as valid settings, every
manifest parses, and haproxy's variables are all given by the compose file."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from serving.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
_VAR = re.compile(r"\bFAIRSHELF_[A-Z0-9_]*[A-Z0-9]")


def _files() -> list[Path]:
    found = [p for p in DEPLOY.rglob("*") if p.is_file()]
    return [*found, ROOT / "docs" / "deploy.md"]


def _is_setting(var: str) -> bool:
    """``FAIRSHELF_RECSYS__OVERSAMPLE`` -> Settings.recsys.oversample, field by field."""
    model: type[BaseModel] | None = Settings
    for part in var.removeprefix("FAIRSHELF_").lower().split("__"):
        if model is None or part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return True


def test_every_variable_named_in_deploy_is_a_setting() -> None:
    named: dict[str, set[str]] = {}
    for path in _files():
        for var in _VAR.findall(path.read_text()):
            named.setdefault(var, set()).add(str(path.relative_to(ROOT)))
    assert len(named) >= 8, sorted(named)  # the scan sees the deploy files at all
    unknown = {var: sorted(where) for var, where in named.items() if not _is_setting(var)}
    assert not unknown, f"not in serving/settings.py: {unknown}"


def test_the_scan_would_catch_a_misspelt_setting() -> None:
    assert _is_setting("FAIRSHELF_PRICE_EPOCH_SECONDS")
    assert _is_setting("FAIRSHELF_RECSYS__OVERSAMPLE")
    assert not _is_setting("FAIRSHELF_RECSYS__OVERSAMPEL")
    assert not _is_setting("FAIRSHELF_PRICE_EPOCH_SECOND")
    assert not _is_setting("FAIRSHELF_DB_URL__HOST")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def test_every_manifest_parses() -> None:
    kinds = set()
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in _docs(path):
            kinds.add(doc["kind"])
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "CronJob",
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
    } <= kinds
    compose = _docs(DEPLOY / "compose.yaml")[0]
    assert {
        "postgres",
        "replica-1",
        "replica-2",
        "replica-3",
        "lb",
        "prometheus",
        "retrain",
    } <= set(compose["services"])


def test_configmap_and_secret_template_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("FAIRSHELF_")]:
        monkeypatch.delenv(var)
    config = _docs(DEPLOY / "k8s" / "configmap.yaml")[0]["data"]
    secret = _docs(DEPLOY / "k8s" / "secret.yaml")[0]["stringData"]
    for var, value in {**config, **secret}.items():
        monkeypatch.setenv(var, str(value))
    settings = load_settings()
    assert settings.price_epoch_seconds == int(config["FAIRSHELF_PRICE_EPOCH_SECONDS"])
    assert settings.reload_interval_seconds < settings.price_epoch_seconds / 10
    assert len(settings.api_keys) == 3 and settings.pseudonym_key is not None


def test_deployment_probes_and_retrain_job_match_the_server() -> None:
    deployment = _docs(DEPLOY / "k8s" / "deployment.yaml")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    cron = _docs(DEPLOY / "k8s" / "retrain-cronjob.yaml")[0]
    job = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert "fairshelf retrain --db" in " ".join(
        job["command"]
    ) and "--bundles /bundles" in " ".join(job["command"])


def test_haproxy_variables_are_all_set_by_compose() -> None:
    used = set(re.findall(r"\$\{(\w+)\}", (DEPLOY / "haproxy" / "haproxy.cfg").read_text()))
    given = set(_docs(DEPLOY / "compose.yaml")[0]["services"]["lb"]["environment"])
    assert used and used == given
