"""Summaries the console computes from what the server already has: calls per operation from
its latency histogram, the fairness guard's counters, and what existing and new shoppers paid
per category from the quote log."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY

from fairshelf.errors import NotFound
from pricing.catalog import PricingCatalog
from pricing.fairness.quotes import Quote
from serving.metrics import Metrics


@dataclass(frozen=True)
class OperationStats:
    """Calls of one operation over one transport since the server started."""

    operation: str
    transport: str
    calls: int
    rate_per_s: float
    p99_ms: float | None


def _histogram_p99(buckets: list[tuple[float, float]], count: float) -> float | None:
    """The upper bound of the bucket holding the 99th percentile (cumulative buckets)."""
    if count <= 0:
        return None
    for upper, cumulative in sorted(buckets):
        if cumulative >= 0.99 * count:
            return upper
    return None


def operation_stats(metrics: Metrics, uptime_s: float) -> list[OperationStats]:
    """Calls, mean rate and p99 (bucket bound) per operation from the server's histogram."""
    counts: dict[tuple[str, str], float] = {}
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for family in metrics.request_seconds.collect():
        for s in family.samples:
            key = (s.labels.get("operation", ""), s.labels.get("transport", ""))
            if s.name.endswith("_count"):
                counts[key] = s.value
            elif s.name.endswith("_bucket"):
                buckets[key].append((float(s.labels["le"]), s.value))
    return [
        OperationStats(
            op,
            transport,
            int(n),
            n / max(uptime_s, 1e-9),
            None if (p := _histogram_p99(buckets[(op, transport)], n)) is None else p * 1000,
        )
        for (op, transport), n in sorted(counts.items())
    ]


def violation_counts() -> dict[str, float]:
    """The fairness guard's violation counters (process-wide registry), by label set."""
    out: dict[str, float] = {}
    for family in REGISTRY.collect():
        if family.name != "fairshelf_fairness_violations":
            continue
        for s in family.samples:
            if s.name.endswith("_total"):
                out[",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) or "all"] = s.value
    return out


def loyal_vs_new(quotes: Iterable[Quote], catalog: PricingCatalog | None) -> dict[str, Any]:
    """Mean price paid, as % of the list price, by existing and new shoppers per category.

    Rule G3 keeps list prices equal; published programs (rule G4) are the only legitimate
    difference between the two groups, so the chart shows what each group paid.
    """
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    uses: dict[str, int] = defaultdict(int)
    for q in quotes:
        for line in q.discount_lines:
            uses[line.program_id] += 1
        group = "existing" if q.group.is_existing else "new" if q.group.is_new else None
        if group is None or q.list_price <= 0:
            continue
        try:
            category = catalog.get(q.item_id).category.split("/")[0] if catalog else "all"
        except NotFound:
            category = "(gone)"
        acc = sums[(category, group)]
        acc[0] += 100.0 * q.final_price / q.list_price
        acc[1] += 1
    categories = sorted({c for c, _ in sums})
    series = {
        g: [sums[(c, g)][0] / sums[(c, g)][1] if sums[(c, g)][1] else 0.0 for c in categories]
        for g in ("existing", "new")
    }
    counts = {g: [int(sums[(c, g)][1]) for c in categories] for g in ("existing", "new")}
    return {"categories": categories, "series": series, "counts": counts, "uses": dict(uses)}
