"""Prometheus metrics of the server, on a registry of its own.

Names follow ``fairshelf_<thing>_<unit>``. Each :class:`Metrics` owns a fresh
:class:`~prometheus_client.CollectorRegistry`, so that several servers in one process (tests)
do not collide, and ``/metrics`` shows this server's numbers plus the process-wide ones on the
default registry (the fairness guard's counters, process CPU and memory).

Under ``fairshelf serve --workers N`` every worker writes its values to the shared directory
named by ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, chosen when the
library is imported), and ``/metrics`` on any worker reports the sum over all of them.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Fine buckets below 10 ms: the recommend bars are 1-10 ms at p99.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5,
)  # fmt: skip


class Metrics:
    """Every metric the server exports."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # (operation, transport, code) -> the histogram's and the counter's child: labels()
        # takes a lock and rebuilds the label key on every call, a third of what recording a
        # call cost; the label sets are few and their children never change.
        self._call_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self.request_seconds = Histogram(
            "fairshelf_request_seconds",
            "Time to serve one call, per operation and transport.",
            ["operation", "transport"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests_total = Counter(
            "fairshelf_requests_total",
            "Calls served, per operation, transport and status code.",
            ["operation", "transport", "code"],
            registry=self.registry,
        )
        self.reloads_total = Counter(
            "fairshelf_bundle_reloads_total",
            "Bundle load attempts by outcome (loaded, refused).",
            ["outcome"],
            registry=self.registry,
        )
        self.bundle_info = Gauge(
            "fairshelf_bundle_loaded_timestamp_seconds",
            "Unix time the serving bundle was swapped in, labelled by bundle id.",
            ["bundle_id"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        # Known outcomes start at 0, so that the first refusal is an increase an alert sees.
        for outcome in ("loaded", "refused"):
            self.reloads_total.labels(outcome)
        self.bundle_created = Gauge(
            "fairshelf_bundle_created_timestamp_seconds",
            "Unix time the serving bundle was trained (its manifest's created_at).",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.events_last_ingested = Gauge(
            "fairshelf_events_last_ingested_timestamp_seconds",
            "Unix time an event was last accepted (the process start before the first one).",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.events_last_ingested.set_to_current_time()
        self.events_total = Counter(
            "fairshelf_events_total",
            "Events accepted by the event log, by event type.",
            ["event_type"],
            registry=self.registry,
        )
        self.events_duplicate_total = Counter(
            "fairshelf_events_duplicate_total",
            "Events ignored because their event_id was already stored.",
            registry=self.registry,
        )
        self.recommendations_total = Counter(
            "fairshelf_recommendations_total",
            "Recommendation lists served, by strategy.",
            ["strategy"],
            registry=self.registry,
        )

        self.exposures_dropped_total = Counter(
            "fairshelf_exposures_dropped_total",
            "Exposures not logged because the buffer was full (event store slow or down).",
            registry=self.registry,
        )
        self.exposures_written_total = Counter(
            "fairshelf_exposures_written_total",
            "Exposures written to the event store.",
            registry=self.registry,
        )

    def observe(self, operation: str, transport: str, code: str, seconds: float) -> None:
        """Record one served call."""
        key = (operation, transport, code)
        children = self._call_children.get(key)
        if children is None:
            children = (
                self.request_seconds.labels(operation, transport),
                self.requests_total.labels(operation, transport, code),
            )
            self._call_children[key] = children
        children[0].observe(seconds)
        children[1].inc()

    def render(self) -> bytes:
        """The text exposition format for ``/metrics``."""
        shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if shared:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, shared)
            return generate_latest(merged)
        return generate_latest(self.registry) + generate_latest(REGISTRY)
