"""serving.metrics: each served call is counted once under its own labels."""

from __future__ import annotations

import pytest

from serving.metrics import Metrics


@pytest.fixture(autouse=True)
def _one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def test_observe_counts_each_label_set_apart() -> None:
    m = Metrics()
    for _ in range(3):
        m.observe("Recommend", "grpc", "OK", 0.0004)
    m.observe("Recommend", "grpc", "NOT_FOUND", 0.002)
    m.observe("Recommend", "http", "OK", 0.03)
    m.observe("QuotePrices", "grpc", "OK", 0.0004)

    def count(op: str, transport: str, code: str) -> float | None:
        labels = {"operation": op, "transport": transport, "code": code}
        return m.registry.get_sample_value("fairshelf_requests_total", labels)

    assert count("Recommend", "grpc", "OK") == 3
    assert count("Recommend", "grpc", "NOT_FOUND") == 1
    assert count("Recommend", "http", "OK") == 1
    assert count("QuotePrices", "grpc", "OK") == 1
    hist = {"operation": "Recommend", "transport": "grpc"}
    assert m.registry.get_sample_value("fairshelf_request_seconds_count", hist) == 4
    bucket = {**hist, "le": "0.001"}
    assert m.registry.get_sample_value("fairshelf_request_seconds_bucket", bucket) == 3
    http = {"operation": "Recommend", "transport": "http"}
    assert m.registry.get_sample_value("fairshelf_request_seconds_sum", http) == pytest.approx(0.03)


def test_two_servers_in_one_process_keep_their_own_counts() -> None:
    a, b = Metrics(), Metrics()
    a.observe("Recommend", "grpc", "OK", 0.001)
    labels = {"operation": "Recommend", "transport": "grpc", "code": "OK"}
    assert a.registry.get_sample_value("fairshelf_requests_total", labels) == 1
    assert b.registry.get_sample_value("fairshelf_requests_total", labels) is None
