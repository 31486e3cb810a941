"""Builds the pricing side of the server: the fairness guard over the pricing engine, the
guardrail store adapter and the audit report.

Serving reaches prices only through :class:`~pricing.fairness.guard.FairQuoteService` (built
with its :meth:`~pricing.fairness.guard.FairQuoteService.build`); this module never imports the
engine or a policy (a fairness test parses every serving module to hold that line). The
catalogue comes from the serving bundle (items and fitted elasticities) and follows each hot
reload; guardrails come from the guardrail store and follow every change, including changes
made by another replica (polled).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fairshelf.errors import InvalidArgument, ModelUnavailable, NotFound, PolicyRejected
from pricing.catalog import PricingCatalog
from pricing.epochs import EpochClock
from pricing.fairness.guard import FairQuoteService
from pricing.fairness.programs import ProgramBook
from pricing.fairness.report import report_document
from serving.api_models import (
    DeleteGuardrailsIn,
    EffectiveGuardrailOut,
    GuardrailChangeOut,
    GuardrailHistoryOut,
    GuardrailsOut,
    PutGuardrailsIn,
    RollbackGuardrailsIn,
)
from serving.api_promotions import (
    EndPromotionIn,
    PromotionChangeOut,
    PromotionsOut,
    PublishPromotionIn,
)
from serving.checkpointer import build_checkpointer
from serving.logging import get_logger
from serving.receipts import quote_receipt
from serving.reload import LoadedModel
from serving.settings import Settings
from serving.store.audit_store import AuditStore
from serving.store.db import Database
from serving.store.guardrails_store import GuardrailStore
from serving.store.price_history_store import PriceHistoryStore
from serving.store.promotions_store import PromotionStore
from serving.store.quote_store import QuoteStore

log = get_logger("fairshelf.pricing")


def load_programs(path: Path | None) -> ProgramBook:
    """The published discount programs in ``path`` (none when ``path`` is ``None``).

    Parameters
    ----------
    path:
        JSON file: a list of programs, or ``{"programs": [...]}``.

    Returns
    -------
    ProgramBook

    Raises
    ------
    InvalidArgument
        The file is missing, not JSON, or not of that shape (field ``programs_file``).
    PolicyRejected
        A program breaks rule G4 (could raise a price, has no public text, ...); the message
        names the file and the program.
    """
    if path is None:
        return ProgramBook()
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidArgument(
            f"programs_file {path} does not exist", field="programs_file"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidArgument(
            f"programs_file {path} is not readable JSON: {exc}", field="programs_file"
        ) from None
    if isinstance(data, dict) and set(data) == {"programs"}:
        data = data["programs"]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise InvalidArgument(
            f'programs_file {path} must hold a list of programs or {{"programs": [...]}}',
            field="programs_file",
        )
    try:
        return ProgramBook.from_json(data)
    except PolicyRejected as exc:
        # Refused at start, before any quote: a published program must only ever lower prices.
        raise PolicyRejected(f"programs_file {path}: {exc}", field=exc.field) from None


class PricingParts:
    """The pricing and admin back end of one server.

    Parameters
    ----------
    settings:
        Policy, epoch length, poll interval.
    db:
        Database holding guardrails, price history, quotes and the audit log.

    Raises
    ------
    InvalidArgument, PolicyRejected
        ``settings.programs_file`` cannot be read or holds an invalid program.
    """

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        # Checked first, so that a bad program stops the server before anything runs.
        self.programs = load_programs(settings.programs_file)
        self.audit = AuditStore(db)
        # Every guardrail change is also chained into the fairness audit log (rule G5).
        self.store = GuardrailStore(db, audit=self.audit)
        # Each batch the quote writer commits is sealed in the audit log (Merkle root).
        self.quote_log = QuoteStore(db, audit=self.audit)
        self.quote_log.seal_unbatched()
        self.checkpointer = build_checkpointer(settings, self.audit)
        # Published promotions: public facts every quote in their window carries, audited.
        self.promotions = PromotionStore(db, audit=self.audit)
        self.history = PriceHistoryStore(db)
        self.clock = EpochClock(length=timedelta(seconds=settings.price_epoch_seconds))
        self.quotes: FairQuoteService | None = None
        self.listeners: list[Callable[[FairQuoteService], None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -- catalogue from the bundle -----------------------------------------------------------

    def on_model(self, model: LoadedModel) -> None:
        """Price the new bundle's catalogue (first bundle: build the guard)."""
        catalog = PricingCatalog.from_frames(model.bundle.items, model.bundle.elasticity)
        if catalog.unpriced:
            log.warning(
                "items_without_price",
                bundle=model.bundle_id,
                count=len(catalog.unpriced),
                first=list(catalog.unpriced[:5]),
            )
        with self._lock:
            if self.quotes is None:
                self.quotes = FairQuoteService.build(
                    catalog=catalog,
                    guardrails=self.store.current(),
                    policy=self.settings.pricing_policy,
                    policy_params=self.settings.pricing_policy_params,
                    quote_log=self.quote_log,
                    audit=self.audit,
                    history=self.history,
                    clock=self.clock,
                    programs=self.programs,
                    quote_batch_seconds=self.settings.quote_batch_seconds,
                    promotions=self.promotions.current(),
                    pseudonym_key=_key_bytes(self.settings),
                )
                log.info(
                    "pricing_ready",
                    policy=self.settings.pricing_policy,
                    items=len(catalog),
                    programs=len(self.programs.programs),
                )
                for listener in self.listeners:
                    listener(self.quotes)
            else:
                self.quotes.set_catalog(catalog)
                log.info("pricing_catalog_swapped", bundle=model.bundle_id, items=len(catalog))

    # -- guardrails ---------------------------------------------------------------------------

    def get_out(self, scope: str) -> GuardrailsOut:
        """The guardrails of ``scope`` (GuardrailsPort)."""
        return self.store.get_out(scope)

    def put_out(self, scope: str, body: PutGuardrailsIn, actor: str) -> GuardrailsOut:
        """Store new guardrails and put them in force here at once (GuardrailsPort)."""
        out = self.store.put_out(scope, body, actor)
        self.refresh_guardrails()
        return out

    def rollback_out(self, body: RollbackGuardrailsIn, actor: str) -> GuardrailChangeOut:
        """Restore an older version as a new one and put it in force here (GuardrailsPort)."""
        out = self.store.rollback_out(body, actor)
        self.refresh_guardrails()
        return out

    def delete_out(self, scope: str, body: DeleteGuardrailsIn, actor: str) -> GuardrailChangeOut:
        """Remove the rule of one scope and put the result in force here (GuardrailsPort)."""
        out = self.store.delete_out(scope, body, actor)
        self.refresh_guardrails()
        return out

    def history_out(self, limit: int | None) -> GuardrailHistoryOut:
        """Who changed the guardrails, when, why and how, newest first (GuardrailsPort)."""
        return self.store.history_out(limit)

    def effective_out(self, item_id: str) -> EffectiveGuardrailOut:
        """The guardrail in force for an item of the served catalogue (GuardrailsPort).

        Raises
        ------
        ModelUnavailable
            No bundle (hence no catalogue) is loaded yet.
        NotFound
            The item is not in the catalogue (field ``item_id``).
        """
        quotes = self.quotes
        if quotes is None:
            raise ModelUnavailable("no catalogue loaded yet")
        try:
            category = quotes.catalog.get(item_id).category
        except NotFound:
            raise NotFound(f"unknown item {item_id!r}", field="item_id") from None
        return self.store.effective_out(item_id, category)

    def refresh_guardrails(self) -> None:
        """Load the stored guardrail set into the engine when its version changed."""
        quotes = self.quotes
        if quotes is None:
            return
        current = self.store.current()
        if current.version != quotes.guardrails.version:
            quotes.set_guardrails(current)
            log.info("guardrails_in_force", version=current.version)

    # -- promotions ---------------------------------------------------------------------------

    def list_promotions_out(self) -> PromotionsOut:
        """Every published promotion and the ones running now (PromotionsPort)."""
        return self.promotions.list_out()

    def publish_promotion_out(
        self, name: str, body: PublishPromotionIn, actor: str
    ) -> PromotionChangeOut:
        """Publish a promotion and put it in force here at once (PromotionsPort)."""
        out = self.promotions.publish_out(name, body, actor)
        self.refresh_promotions()
        return out

    def end_promotion_out(self, name: str, body: EndPromotionIn, actor: str) -> PromotionChangeOut:
        """End a promotion now, here at once (PromotionsPort)."""
        out = self.promotions.end_out(name, body, actor)
        self.refresh_promotions()
        return out

    def refresh_promotions(self) -> None:
        """Load the stored promotions into the guard when their version changed."""
        quotes = self.quotes
        if quotes is None:
            return
        current = self.promotions.current()
        if current.version != quotes.promotions.version:
            quotes.set_promotions(current)
            log.info("promotions_in_force", version=current.version)

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.reload_interval_seconds):
            try:
                self.refresh_promotions()
                self.refresh_guardrails()
            except Exception as exc:  # keep polling through a transient database error
                log.error("guardrail_poll_failed", error=repr(exc))

    def start(self) -> None:
        """Poll the guardrail store, so changes made through another replica take effect."""
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll, name="fairshelf-guardrails", daemon=True)
        self._poller.start()
        if self.checkpointer is not None:
            self.checkpointer.start()

    # -- audit --------------------------------------------------------------------------------

    def audit_report(self, since: datetime | None, until: datetime | None) -> dict[str, Any]:
        """The fairness audit document for a window (G3, G4, the G5 chain check)."""
        if self.quotes is not None:
            self.quotes.flush()
        return report_document(
            self.quote_log,
            self.audit,
            since=since,
            until=until,
            programs=self.quotes.programs if self.quotes is not None else None,
        )

    def close(self) -> None:
        """Stop polling, write buffered quotes, release the guard's threads."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        if self.quotes is not None:
            self.quotes.close()
        if self.checkpointer is not None:
            self.checkpointer.close()  # signs what the last quotes sealed

    def receipt(self, quote_id: str) -> dict[str, Any]:
        """The receipt of a quote: its inclusion proof, batch record and first checkpoint."""
        if self.quotes is not None:
            self.quotes.flush()  # a quote still on its way to the log has no batch yet
        sinks = self.checkpointer.sinks if self.checkpointer is not None else []
        return quote_receipt(quote_id, self.quote_log, self.audit, sinks)


def _key_bytes(settings: Settings) -> bytes | None:
    key = settings.pseudonym_key
    return None if key is None else key.get_secret_value().encode()


def build_pricing(settings: Settings, db: Database) -> PricingParts | None:
    """The pricing back end for ``settings`` (``None`` when pricing is switched off)."""
    if not settings.pricing_enabled:
        return None
    return PricingParts(settings, db)
