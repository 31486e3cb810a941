"""What the console's pages show, read through the one service object.

Every read runs as an operation of :class:`~serving.service.FairshelfService` (authorised
against the session's role, timed into ``fairshelf_request_seconds{transport="console"}``):
the API's own operations where one exists (model info, guardrails, history, effective
guardrail, quote explanation, audit report), and for what the API does not offer, reads of the
same stores and engine the service is wired to (:class:`~serving.pricing_wiring.PricingParts`).
No price is computed here: the preview asks the fairness guard's engine for a dry run.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY

from fairshelf.errors import InvalidArgument, ModelUnavailable, NotFound
from pricing.fairness.audit_chain import ChainReport
from pricing.fairness.guardrail_preview import GuardrailPreview
from pricing.fairness.quotes import Quote
from pricing.fairness.report import verify_audit_log
from pricing.guardrail_rules import parse_scope_id
from pricing.guardrails import GuardrailSet, item_band
from serving.api_models import PutGuardrailsIn
from serving.metrics import Metrics
from serving.pricing_wiring import PricingParts
from serving.service import CallContext, FairshelfService
from serving.store.guardrails_store import GuardrailChange, rule_from_body

#: History rows per page; a history of any length is read one page at a time.
HISTORY_PAGE = 20
#: The preview prices at most this many items of a scope (the first ids in order).
PREVIEW_MAX_ITEMS = 20_000
SEARCH_LIMIT = 50


@dataclass(frozen=True)
class OperationStats:
    """Calls of one operation over one transport since the server started."""

    operation: str
    transport: str
    calls: int
    rate_per_s: float
    p99_ms: float | None


@dataclass(frozen=True)
class ChainStatus:
    """The last check of the audit chain."""

    ok: bool
    records: int
    head_seq: int
    message: str
    checked_at: datetime


@dataclass
class ItemPage:
    """An item: catalogue facts, prices per epoch with the band, latest quotes."""

    item_id: str
    title: str
    category: str
    base_price: float
    unit_cost: float | None
    labels: list[str] = field(default_factory=list)
    prices: list[float] = field(default_factory=list)
    floor: list[float | None] = field(default_factory=list)
    ceiling: list[float | None] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)


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


def _items_of_scope(parts: PricingParts, scope: str) -> list[str]:
    quotes = parts.quotes
    if quotes is None:
        raise ModelUnavailable("no catalogue loaded yet")
    kind, key = parse_scope_id(scope)
    catalog = quotes.catalog
    if kind == "item":
        if key not in catalog:
            raise NotFound(f"unknown item {key!r}", field="scope")
        return [key]
    if kind == "global":
        return sorted(catalog)[:PREVIEW_MAX_ITEMS]
    prefix = key + "/"
    ids = [i for i in catalog if (c := catalog.get(i).category) == key or c.startswith(prefix)]
    return sorted(ids)[:PREVIEW_MAX_ITEMS]


class ConsoleData:
    """The console's reads and its dry run, over the service object.

    Parameters
    ----------
    service:
        The service the API uses; its guardrail port must be the server's pricing parts for
        the guardrail, item and fairness pages (otherwise they answer ``UNAVAILABLE``).
    metrics:
        The server's metrics (overview).
    """

    def __init__(self, service: FairshelfService, metrics: Metrics) -> None:
        self.service = service
        self.metrics = metrics
        self.started = time.monotonic()
        self.chain: ChainStatus | None = None

    def parts(self) -> PricingParts:
        """The pricing parts behind the service."""
        parts = self.service.guardrails
        if not isinstance(parts, PricingParts):
            raise ModelUnavailable("pricing is not configured on this server")
        return parts

    # -- overview ------------------------------------------------------------------------
    def overview(self, call: CallContext) -> dict[str, Any]:
        """Bundle and age, reloads, calls per operation, violations, chain status."""

        def run(_role: Any) -> dict[str, Any]:
            model = self.service.holder.current
            reloads = {
                s.labels["outcome"]: s.value
                for fam in self.metrics.reloads_total.collect()
                for s in fam.samples
                if s.name.endswith("_total")
            }
            age = None
            if model is not None:
                age = datetime.now(UTC) - model.bundle.manifest.created_at
            return {
                "model": model,
                "bundle_age": age,
                "reloads": reloads,
                "operations": operation_stats(self.metrics, time.monotonic() - self.started),
                "violations": violation_counts(),
                "chain": self.chain,
            }

        return self.service.perform("GetConsoleOverview", call, run)

    # -- guardrails ----------------------------------------------------------------------
    def guardrail_set(self, call: CallContext) -> tuple[GuardrailSet, dict[str, GuardrailChange]]:
        """The set in force and, per scope, the last change that touched it."""

        def run(_role: Any) -> tuple[GuardrailSet, dict[str, GuardrailChange]]:
            store = self.parts().store
            current = store.current()
            last: dict[str, GuardrailChange] = {}
            for change in store.history(limit=200):
                last.setdefault(change.scope, change)
            return current, last

        return self.service.perform("GetGuardrails", call, run)

    def history_page(self, call: CallContext, page: int) -> tuple[list[GuardrailChange], int]:
        """One page of the guardrail history (newest first) and the number of pages."""

        def run(_role: Any) -> tuple[list[GuardrailChange], int]:
            store = self.parts().store
            total = store.count()
            pages = max(1, -(-total // HISTORY_PAGE))
            p = min(max(1, page), pages)
            if total == 0:
                return [], 1
            return store.history(limit=HISTORY_PAGE, offset=(p - 1) * HISTORY_PAGE), pages

        return self.service.perform("GetGuardrailHistory", call, run)

    def changes_since(self, call: CallContext, version: int) -> list[GuardrailChange]:
        """The changes made after ``version`` (what a conflicting writer did), newest first."""

        def run(_role: Any) -> list[GuardrailChange]:
            store = self.parts().store
            n = max(1, min(50, store.count() - version))
            return [c for c in store.history(limit=n) if c.version > version]

        return self.service.perform("GetGuardrailHistory", call, run)

    def preview(self, call: CallContext, scope: str, body: PutGuardrailsIn) -> GuardrailPreview:
        """What saving ``body`` at ``scope`` would do to the current prices of its items.

        Raises
        ------
        InvalidArgument
            The proposed rule or the resulting set is invalid (as a save would say).
        """

        def run(_role: Any) -> GuardrailPreview:
            parts = self.parts()
            proposed = parts.store.current().with_rule(rule_from_body(scope, body))
            ids = _items_of_scope(parts, scope)
            assert parts.quotes is not None
            return parts.quotes.preview_guardrails(proposed, ids, datetime.now(UTC))

        return self.service.perform("PreviewGuardrails", call, run)

    # -- items ---------------------------------------------------------------------------
    def search_items(self, call: CallContext, query: str) -> list[tuple[str, str, str]]:
        """Items whose id is ``query`` or whose title contains it: (id, title, category)."""

        def run(_role: Any) -> list[tuple[str, str, str]]:
            q = query.strip()
            if not q:
                return []
            if len(q) > 200:
                raise InvalidArgument("search text is longer than 200 characters", field="q")
            items = self.service.holder.require().bundle.items
            ids = items["item_id"].astype(str)
            titles = items["title"].astype(str)
            hit = (ids == q) | titles.str.contains(q, case=False, regex=False)
            found = items[hit].head(SEARCH_LIMIT)
            return [
                (str(r.item_id), str(r.title), str(r.category))
                for r in found.itertuples(index=False)
            ]

        return self.service.perform("GetItemPrices", call, run)

    def item(self, call: CallContext, item_id: str, days: int) -> ItemPage:
        """An item's prices per epoch over ``days`` with the band in force then, its quotes."""
        if not 1 <= days <= 90:
            raise InvalidArgument(f"days must be between 1 and 90, got {days}", field="days")

        def run(_role: Any) -> ItemPage:
            parts = self.parts()
            quotes = parts.quotes
            if quotes is None:
                raise ModelUnavailable("no catalogue loaded yet")
            try:
                state = quotes.catalog.get(item_id)
            except NotFound:
                raise NotFound(f"unknown item {item_id!r}", field="item_id") from None
            items = self.service.holder.require().bundle.items
            row = items[items["item_id"].astype(str) == item_id]
            title = str(row["title"].iloc[0]) if len(row) else ""
            page = ItemPage(item_id, title, state.category, state.base_price, state.unit_cost)
            since = datetime.now(UTC) - timedelta(days=days)
            series = parts.history.series(item_id, since)
            versions = _versions_at(parts, [t for t, _ in series])
            for (start, price), set_ in zip(series, versions, strict=True):
                band = item_band(
                    set_.effective(item_id, state.category), state.base_price, state.unit_cost
                )
                page.labels.append(start.strftime("%m-%d %H:%M"))
                page.prices.append(price)
                page.floor.append(band.lower)
                page.ceiling.append(None if band.upper == float("inf") else band.upper)
            quotes.flush()
            page.quotes = parts.quote_log.for_item(item_id, limit=20)
            return page

        return self.service.perform("GetItemPrices", call, run)

    # -- fairness ------------------------------------------------------------------------
    def verify_chain(self, call: CallContext) -> ChainStatus:
        """Check the whole audit chain against its anchor now."""

        def run(_role: Any) -> ChainStatus:
            report: ChainReport = verify_audit_log(self.parts().audit)
            self.chain = ChainStatus(
                ok=report.ok,
                records=report.records,
                head_seq=report.head.seq if report.head else 0,
                message=report.message,
                checked_at=datetime.now(UTC),
            )
            return self.chain

        return self.service.perform("VerifyAuditChain", call, run)

    def fairness_extras(self, call: CallContext) -> dict[str, Any]:
        """Loyal vs new per top-level category, program use, the latest violation records."""

        def run(_role: Any) -> dict[str, Any]:
            parts = self.parts()
            if parts.quotes is not None:
                parts.quotes.flush()
            return {
                **loyal_vs_new(parts.quote_log.iter_quotes(), parts),
                "violations": [
                    r
                    for r in parts.audit.records()
                    if "violation" in r.kind or "quarantine" in r.kind
                ][-50:],
            }

        return self.service.perform("GetAuditReport", call, run)


def _versions_at(parts: PricingParts, times: list[datetime]) -> list[GuardrailSet]:
    """The guardrail set in force at each time (one read per distinct version)."""
    changes = sorted((c.at, c.version) for c in parts.store.history(limit=1000))
    cache: dict[int, GuardrailSet] = {}
    out = []
    for t in times:
        version = 0
        for at, v in changes:
            if at <= t:
                version = v
            else:
                break
        if version not in cache:
            cache[version] = parts.store.get_version(version)
        out.append(cache[version])
    return out


def loyal_vs_new(quotes: Iterable[Quote], parts: PricingParts) -> dict[str, Any]:
    """Mean price paid, as % of the list price, by existing and new shoppers per category.

    Rule G3 keeps list prices equal; published programs (rule G4) are the only legitimate
    difference between the two groups, so the chart shows what each group paid.
    """
    catalog = parts.quotes.catalog if parts.quotes is not None else None
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
