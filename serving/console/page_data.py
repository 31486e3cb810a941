"""What the console's pages show, read through the one service object.

Every read runs as an operation of :class:`~serving.service.FairshelfService` (authorised
against the session's role, timed into ``fairshelf_request_seconds{transport="console"}``):
the API's own operations where one exists (model info, guardrails, history, effective
guardrail, quote explanation, audit report), and for what the API does not offer, reads of the
same stores and engine the service is wired to (:class:`~serving.pricing_wiring.PricingParts`).
No price is computed here: the preview asks the fairness guard's engine for a dry run.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fairshelf.errors import InvalidArgument, ModelUnavailable, NotFound
from pricing.catalog import PricingCatalog
from pricing.fairness.audit_chain import ChainReport
from pricing.fairness.guardrail_preview import GuardrailPreview
from pricing.fairness.quotes import Quote
from pricing.fairness.report import verify_audit_log
from pricing.guardrail_rules import parse_scope_id
from pricing.guardrails import GuardrailSet, item_band
from serving.api_models import PutGuardrailsIn
from serving.console.summaries import loyal_vs_new, operation_stats, violation_counts
from serving.metrics import Metrics
from serving.pricing_wiring import PricingParts
from serving.service import CallContext, FairshelfService
from serving.store.guardrails_store import GuardrailChange, rule_from_body

#: History rows per page; a history of any length is read one page at a time.
HISTORY_PAGE = 20
#: The preview prices at most this many items of a scope (the first ids in order).
PREVIEW_MAX_ITEMS = 20_000
SEARCH_LIMIT = 50
#: The fairness page reads the whole quote and audit logs (seconds on a large log), so its
#: report is recomputed at most this often per time window, or on request.
FAIRNESS_TTL_S = 30.0
_FAIRNESS_WINDOWS = 8


@dataclass(frozen=True)
class FairnessView:
    """The audit report and the console's additions, as computed at ``computed_at``."""

    report: dict[str, Any]
    extras: dict[str, Any]
    computed_at: datetime
    monotonic: float


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


class _CategoryIndex:
    """Item ids by category of one catalogue (rebuilt when the catalogue is swapped)."""

    def __init__(self) -> None:
        self._catalog: object | None = None
        self._by_category: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def items(self, catalog: PricingCatalog, scope: str) -> list[str]:
        """The ids of the items a scope covers, sorted, at most :data:`PREVIEW_MAX_ITEMS`.

        Raises
        ------
        InvalidArgument
            A malformed scope id.
        NotFound
            An item scope naming an unknown item.
        """
        kind, key = parse_scope_id(scope)
        if kind == "item":
            if key not in catalog:
                raise NotFound(f"unknown item {key!r}", field="scope")
            return [key]
        with self._lock:
            if self._catalog is not catalog:
                index: dict[str, list[str]] = defaultdict(list)
                for item_id in sorted(catalog):
                    index[catalog.get(item_id).category].append(item_id)
                self._by_category, self._catalog = dict(index), catalog
            by_category = self._by_category
        if kind == "global":
            ids = [i for cat in by_category.values() for i in cat]
        else:
            prefix = key + "/"
            ids = [
                i
                for cat, members in by_category.items()
                if cat == key or cat.startswith(prefix)
                for i in members
            ]
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
        self._fairness: dict[tuple[str, str], FairnessView] = {}
        self._categories = _CategoryIndex()
        self._titles: tuple[str, dict[str, str]] = ("", {})

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
            quotes = parts.quotes
            if quotes is None:
                raise ModelUnavailable("no catalogue loaded yet")
            proposed = parts.store.current().with_rule(rule_from_body(scope, body))
            ids = self._categories.items(quotes.catalog, scope)
            return quotes.preview_guardrails(proposed, ids, datetime.now(UTC))

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
            title = self._title_of(item_id)
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

    def _title_of(self, item_id: str) -> str:
        model = self.service.holder.require()
        bundle_id, titles = self._titles
        if bundle_id != model.bundle_id:
            items = model.bundle.items
            titles = dict(
                zip(items["item_id"].astype(str), items["title"].astype(str), strict=True)
            )
            self._titles = (model.bundle_id, titles)
        return titles.get(item_id, "")

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

    def fairness(
        self, call: CallContext, since: str | None, until: str | None, *, fresh: bool = False
    ) -> FairnessView:
        """The audit report for a window (the API's GetAuditReport) and the page's additions,
        reused for :data:`FAIRNESS_TTL_S` unless ``fresh``."""
        key = (since or "", until or "")
        hit = self._fairness.get(key)
        if hit is not None and not fresh and time.monotonic() - hit.monotonic < FAIRNESS_TTL_S:
            # Authorised and counted as a read of the report, like a fresh one.
            self.service.perform("GetAuditReport", call, lambda _role: None)
            return hit
        report = self.service.audit_report(call, since, until).report
        view = FairnessView(report, self.fairness_extras(call), datetime.now(UTC), time.monotonic())
        if len(self._fairness) >= _FAIRNESS_WINDOWS:
            self._fairness.pop(next(iter(self._fairness)))
        self._fairness[key] = view
        return view

    def fairness_extras(self, call: CallContext) -> dict[str, Any]:
        """Loyal vs new per top-level category, program use, the latest violation records."""

        def run(_role: Any) -> dict[str, Any]:
            parts = self.parts()
            if parts.quotes is not None:
                parts.quotes.flush()
            return {
                **loyal_vs_new(
                    parts.quote_log.iter_quotes(),
                    parts.quotes.catalog if parts.quotes is not None else None,
                ),
                "violations": [
                    r
                    for r in parts.audit.records()
                    if "violation" in r.kind or "quarantine" in r.kind
                ][-50:],
            }

        return self.service.perform("GetAuditReport", call, run)


def _versions_at(parts: PricingParts, times: list[datetime]) -> list[GuardrailSet]:
    """The guardrail set in force at each time, oldest first (one read per distinct version)."""
    cache: dict[int, GuardrailSet] = {}
    out = []
    for version in parts.store.versions_at(times):
        if version not in cache:
            cache[version] = parts.store.get_version(version)
        out.append(cache[version])
    return out
