"""Rule G6 and the quote log: every quote can be explained, from memory or from SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from fairness_fixtures import ContextVarSnoopPolicy, HonestPolicy, ctx_at, make_shop

from fairshelf.errors import InvalidArgument, NotFound
from pricing.fairness.shopper import Shopper

LOYAL = Shopper("l", tenure_days=800, orders=12, device="android", member=True)
NEW = Shopper("n", tenure_days=0, orders=0, device="web")


def test_explanation_names_inputs_policy_guardrail_and_programs(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "x.db", HonestPolicy(), buffer_quotes=True)
    try:
        [q] = shop.service.quote(["sku-001"], ctx_at(competitor_prices={"sku-001": 11.0}), NEW)
        # Explainable the moment it exists (the writer thread may not have stored it yet).
        e = shop.service.explain(q.quote_id)
        assert e.policy == "honest@1" and e.guardrail.endswith("@0")
        assert e.inputs == ("base_price", "competitor_prices", "item_id")
        assert [p.program_id for p in e.programs] == ["welcome10"]
        assert "New customers get 10% off" in e.summary
        assert "nothing about the shopper was used" in e.summary
        shop.service.flush()
        stored = shop.quotes.get(q.quote_id)
        assert stored == q
        assert e.to_json()["quote"]["final_price"] == q.final_price
        with pytest.raises(NotFound, match="no quote with id"):
            shop.service.explain("q_missing")
    finally:
        shop.close()


def test_explanation_of_a_blocked_quote_says_so(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "y.db", ContextVarSnoopPolicy(), ())
    try:
        [q] = shop.service.quote(["sku-002"], ctx_at(), LOYAL)
        e = shop.service.explain(q.quote_id)
        assert q.guard_status == "blocked" and q.blocked_price and q.blocked_price > q.list_price
        assert "blocked and the shopper-free price served" in e.summary
    finally:
        shop.close()


def test_quote_requests_are_validated(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "z.db", HonestPolicy())
    try:
        for bad, field in (
            ([], "item_ids"),
            (["sku-001", "sku-001"], "item_ids"),
            ("sku", "item_ids"),
        ):
            with pytest.raises(InvalidArgument) as err:
                shop.service.quote(bad, ctx_at())  # type: ignore[arg-type]
            assert err.value.field == field
        with pytest.raises(NotFound):
            shop.service.quote(["nope"], ctx_at())
        assert shop.quotes.count() == 0  # nothing half-written
    finally:
        shop.close()


def test_report_document_counts_quotes_and_blocked_prices(tmp_path: Path) -> None:
    from datetime import timedelta

    from fairness_fixtures import AT

    from pricing.fairness.report import report_document

    shop = make_shop(tmp_path / "r.db", ContextVarSnoopPolicy(), (), buffer_quotes=True)
    try:
        shop.service.quote(["sku-001", "sku-002"], ctx_at(), NEW)
        shop.service.quote(["sku-001", "sku-002"], ctx_at(), LOYAL)
        doc = report_document(shop.service.quote_log, shop.service.audit)
        assert doc["quotes"] == 4 and doc["blocked_by_guard"] == 2
        assert doc["chain"]["ok"] and doc["g3_violations"] == 0 and doc["g4_violations"] == 0
        assert "Shopper-dependent prices blocked by the guard (G2): 2" in doc["markdown"]
        later = report_document(
            shop.service.quote_log, shop.service.audit, since=AT + timedelta(days=3650)
        )
        assert later["quotes"] == 0
    finally:
        shop.close()


def test_catalogue_or_guardrail_swap_mid_epoch_keeps_prices_and_flags_nothing(
    tmp_path: Path,
) -> None:
    import dataclasses

    from fairness_fixtures import AT, ITEMS

    from pricing.catalog import PricingCatalog
    from pricing.guardrail_rules import Guardrail
    from pricing.guardrails import GuardrailSet

    shop = make_shop(tmp_path / "swap.db", HonestPolicy(), ())
    try:
        [before] = shop.service.quote(["sku-003"], ctx_at(), NEW)
        dearer = {s.item_id: dataclasses.replace(s, base_price=s.base_price + 5) for s in ITEMS}
        shop.service.set_catalog(PricingCatalog(dearer))
        shop.service.set_guardrails(
            GuardrailSet(version=2).with_rule(Guardrail("global", price_ending=0.99))
        )
        [same_epoch] = shop.service.quote(["sku-003"], ctx_at(), LOYAL)
        assert same_epoch.list_price == before.list_price  # fixed for the epoch (G3)
        assert same_epoch.guard_status == "ok"
        [next_epoch] = shop.service.quote(["sku-003"], ctx_at(AT.replace(hour=12)), LOYAL)
        assert next_epoch.list_price != before.list_price and next_epoch.guard_status == "ok"
        assert shop.audit.count("g2_violation") == 0
    finally:
        shop.close()


class _Mutable(HonestPolicy):
    name = "mutable_inputs"


def test_refused_policy_swap_is_audited_and_guardrail_changes_are_chained(
    tmp_path: Path,
) -> None:
    from fairshelf.errors import PolicyRejected
    from pricing.fairness.change_audit import audit_guardrail_change
    from pricing.fairness.report import verify_audit_log
    from pricing.policies.registry import register_policy

    register_policy(_Mutable)
    shop = make_shop(tmp_path / "swap2.db", HonestPolicy(), ())
    try:
        _Mutable.inputs = frozenset({"base_price", "segment"})
        with pytest.raises(PolicyRejected, match="segment"):
            shop.service.set_policy("mutable_inputs")
        [rejected] = [r for r in shop.audit.records() if r.kind == "policy_rejected"]
        assert "segment" in rejected.payload["message"]
        audit_guardrail_change(
            shop.audit,
            actor="pricing:anna",
            reason="spring floor",
            scope="global",
            version=3,
            changes=[{"field": "floor", "old": None, "new": 5.0}],
        )
        with pytest.raises(InvalidArgument, match="reason"):
            audit_guardrail_change(
                shop.audit, actor="x", reason=" ", scope="global", version=4, changes=[]
            )
        assert verify_audit_log(shop.audit).records == 2
    finally:
        _Mutable.inputs = HonestPolicy.inputs
        shop.close()
