"""Attacks from the caller side (SPEC §7): a storefront steering the "public" context.

The storefront sends the region, and used to send the promotions, with every quote request.
Each test wires the real engine with a regional policy, the guard and real SQLite quote and
audit logs, plays one storefront, and checks what caught it: the promotion book at quote time,
or the context-steering and region-hopping audits over the quote log (with the finding in the
report, the violations metric and the audit chain). The honest regional store, and 100 seeded
honest stores simulated from arrays, must produce no finding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from caller_side_fixtures import RegionalPolicy, loyal, newcomer, simulate_store
from fairness_fixtures import ITEM_IDS, ITEMS
from typer.testing import CliRunner

from fairshelf.cli.main import app
from fairshelf.errors import FailedPrecondition, NotFound
from pricing.catalog import PricingCatalog
from pricing.context import PublicContext
from pricing.engine import PricingEngine
from pricing.fairness.guard import FairQuoteService
from pricing.fairness.metrics import violations_seen
from pricing.fairness.quotes import Quote
from pricing.fairness.report import report_document, verify_audit_log
from pricing.fairness.shopper import Shopper
from pricing.fairness.steering import HOPPING_RULE, STEERING_RULE, SteeringInputs
from pricing.guardrails import GuardrailSet
from pricing.promotions import Promotion, PromotionBook
from serving.store.audit_store import AuditStore
from serving.store.db import Database
from serving.store.quote_store import QuoteStore

DAY = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
SPRING = Promotion("spring", "Spring sale", "10% off everything", DAY, DAY + 72 * HOUR)
SPRING_BOOK = PromotionBook().publish(SPRING, DAY)


@dataclass
class Storefront:
    """A regional store behind the guard, as the server wires it, on a fresh SQLite file."""

    service: FairQuoteService
    db: Database
    audit: AuditStore
    quotes: QuoteStore

    def ask(
        self, shopper: Shopper, at: datetime, region: str, promotions: tuple[str, ...] = ()
    ) -> list[Quote]:
        """One quote request for six items, as a storefront sends it."""
        ctx = PublicContext(at=at, region=region, promotions=promotions)
        return self.service.quote(list(ITEM_IDS[:6]), ctx, shopper)

    def report(self) -> dict[str, Any]:
        return report_document(self.quotes, self.audit)

    def kinds(self) -> list[str]:
        return [r.kind for r in self.audit.records()]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Storefront]:
    db = Database(str(tmp_path / "store.db"))
    audit, quotes = AuditStore(db), QuoteStore(db)
    engine = PricingEngine(
        PricingCatalog({s.item_id: s for s in ITEMS}), GuardrailSet(), RegionalPolicy()
    )
    service = FairQuoteService(
        engine,
        quote_log=quotes,
        audit=audit,
        buffer_quotes=False,
        promotions=PromotionBook(),
        pseudonym_key=b"caller-side-test-key-32-bytes!!!",
    )
    try:
        yield Storefront(service, db, audit, quotes)
    finally:
        service.close()
        db.close()


def _epochs(k: int) -> datetime:
    return DAY + (k % 3) * HOUR


def test_attack_1_loyal_shoppers_sent_a_pricier_region_is_caught_by_steering(
    store: Storefront,
) -> None:
    before = violations_seen(STEERING_RULE, "storefront")
    for k in range(30):
        store.ask(loyal(k), _epochs(k), "CN-31")  # "loyal customers live in Shanghai"
        store.ask(newcomer(k), _epochs(k), "CN")
    report = store.report()
    # Every context-level audit passes: one price per (item, epoch, context).
    assert report["g3_violations"] == 0 and report["g4_violations"] == 0
    steering = [f for f in report["findings"] if f["rule"] == STEERING_RULE]
    assert len(steering) == 1 and report["steering_violations"] == 1
    assert "existing customers were quoted 9.5% (" in steering[0]["message"]  # 0.10 / 1.05
    assert report["steering_days"][0]["p_value"] < 1e-6
    assert "context steering" in report["markdown"]
    # Chained and counted once, however often the report is made.
    store.report()
    assert store.kinds().count("context_steering") == 1
    assert violations_seen(STEERING_RULE, "storefront") == before + 1
    assert verify_audit_log(store.audit).ok


def test_audit_report_command_names_the_steering(store: Storefront, tmp_path: Path) -> None:
    for k in range(20):
        store.ask(loyal(k), _epochs(k), "CN-31")
        store.ask(newcomer(k), _epochs(k), "CN")
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["audit", "report", "--db", store.db.url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "fairness_report.md").read_text(encoding="utf-8")
    assert "**G4-steering** on 2026-03-02 existing customers were quoted 9.5%" in text
    assert "## Context steering" in text and "**1 day(s)** of 1 tested" in text
    assert store.kinds().count("context_steering") == 1


def test_attack_2_a_promotion_only_for_new_shoppers_reaches_everyone(
    store: Storefront,
) -> None:
    store.service.set_promotions(SPRING_BOOK)
    served = []
    for k in range(10):
        served += store.ask(newcomer(k), _epochs(k), "CN", ("spring",))
        served += store.ask(loyal(k), _epochs(k), "CN", ())  # left out on purpose
    # The promotion is a server fact: every quote in its window carries it.
    assert all('"spring"' in q.context_key for q in served)
    by_item: dict[tuple[str, int], set[float]] = {}
    for q in served:
        by_item.setdefault((q.item_id, q.epoch), set()).add(q.list_price)
    assert all(len(p) == 1 for p in by_item.values())
    assert served[0].list_price == round(ITEMS[0].base_price * 0.9, 2)
    report = store.report()
    assert report["steering_violations"] == 0 and report["findings"] == []


def test_attack_3_one_shopper_hopped_between_regions_is_caught_by_hopping(
    store: Storefront,
) -> None:
    before = violations_seen(HOPPING_RULE, "storefront")
    for k in range(10):
        store.ask(newcomer(k), _epochs(k), "CN")
    hopper = loyal(99)
    store.ask(hopper, DAY, "CN")
    store.ask(hopper, DAY + 4 * HOUR, "CN-31")  # the same day, a dearer market
    report = store.report()
    hops = [f for f in report["findings"] if f["rule"] == HOPPING_RULE]
    assert len(hops) == 1 and report["hopping_violations"] == 1
    assert "quoted under 2 regions on 2026-03-02 (CN, CN-31)" in hops[0]["message"]
    assert "loyal-99" not in str(report)  # a day pseudonym, never the id
    store.report()
    assert store.kinds().count("region_hopping") == 1
    assert violations_seen(HOPPING_RULE, "storefront") == before + 1


def test_attack_4_an_unknown_promotion_is_refused_and_nothing_is_logged(
    store: Storefront,
) -> None:
    with pytest.raises(NotFound, match="'black-friday' is not published") as err:
        store.ask(newcomer(1), DAY, "CN", ("black-friday",))
    assert err.value.field == "promotions"
    store.service.set_promotions(SPRING_BOOK)
    with pytest.raises(FailedPrecondition, match="'spring' is not running"):
        store.ask(newcomer(1), DAY - HOUR, "CN", ("spring",))
    assert list(store.quotes.iter_quotes()) == []


def test_honest_regional_store_has_no_finding(store: Storefront) -> None:
    rng = np.random.default_rng(7)
    markets = ["CN", "CN-31", "CN-44"]
    for k in range(30):
        for shopper in (loyal(k), newcomer(k)):
            # Each shopper's market is theirs, drawn without regard to tenure.
            region = markets[int(rng.integers(3))]
            store.ask(shopper, _epochs(k), region)
            store.ask(shopper, _epochs(k) + 2 * HOUR, region)
    report = store.report()
    prices = {q.list_price for q in store.quotes.iter_quotes() if q.item_id == ITEM_IDS[0]}
    assert len(prices) == 3  # regions really differ
    assert report["findings"] == []
    assert report["steering_days"] and report["steering_days"][0]["groups"] > 0
    assert "context_steering" not in store.kinds() and "region_hopping" not in store.kinds()


HONEST_STORES = 100
MAX_FALSE_POSITIVES = 3


def test_false_positive_rate_on_100_seeded_honest_stores() -> None:
    flagged, zs = 0, []
    for seed in range(HONEST_STORES):
        inputs = SteeringInputs()
        for q in simulate_store(seed).quotes:
            inputs.observe(q)
        summary = inputs.audit()
        flagged += bool(summary.findings)
        zs.append(summary.days[0].z)
    # alpha = 0.001 per store-day: about 0.1 false alarms expected in 100 stores.
    assert flagged <= MAX_FALSE_POSITIVES, flagged
    assert abs(float(np.mean(zs))) < 0.35 and 0.6 < float(np.std(zs)) < 1.4


def test_the_same_simulation_catches_half_of_the_loyal_steered() -> None:
    caught = 0
    for seed in range(20):
        inputs = SteeringInputs()
        for q in simulate_store(1000 + seed, steer=0.5).quotes:
            inputs.observe(q)
        caught += bool(inputs.audit().steering)
    assert caught >= 18
