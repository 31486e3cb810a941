"""Rules G3 and G4 over a quote log built by hand: each finding names the rule and the quotes."""

from __future__ import annotations

from pricing.fairness.consistency import audit_quotes
from pricing.fairness.programs import DiscountLine, DiscountProgram, Eligibility, ProgramBook
from pricing.fairness.quotes import Quote
from pricing.fairness.shopper import ShopperGroup

NEW = ShopperGroup("new", "none", "web")
LOYAL = ShopperGroup("long", "frequent", "ios")
WELCOME = DiscountProgram("w", "Welcome", "10% off.", Eligibility.NEW_CUSTOMER, 10)


def _q(
    qid: str,
    list_price: float,
    group: ShopperGroup,
    *,
    final: float | None = None,
    lines: tuple[DiscountLine, ...] = (),
    item: str = "sku-1",
    epoch: int = 7,
) -> Quote:
    return Quote(
        quote_id=qid,
        item_id=item,
        epoch=epoch,
        context_key='["",[],[]]',
        quoted_at="2026-03-02T10:00:00+00:00",
        list_price=list_price,
        final_price=list_price if final is None else final,
        base_price=10.0,
        adjustment=0.0,
        reason_codes=(),
        policy_name="p",
        policy_version="1",
        inputs=("base_price",),
        guardrail_scope="global",
        guardrail_version="1",
        discount_lines=lines,
        group=group,
    )


def test_fair_log_has_no_findings() -> None:
    line = DiscountLine("w", "Welcome", "10% off.", 1.0)
    summary = audit_quotes(
        [
            _q("a", 10.0, NEW, final=9.0, lines=(line,)),
            _q("b", 10.0, LOYAL),
            _q("c", 12.0, LOYAL, epoch=8),
        ],
        ProgramBook([WELCOME]),
    )
    assert summary.ok and summary.quotes == 3 and len(summary.groups) == 2
    assert all(g.list_dispersion == 0 for g in summary.groups)


def test_g3_and_g4_violations_are_found_with_examples() -> None:
    summary = audit_quotes([_q("a", 10.0, NEW), _q("b", 11.5, LOYAL), _q("c", 10.0, NEW)])
    [g3] = summary.g3
    assert g3.rule == "G3" and set(g3.examples) == {"a", "b"}
    assert "2 different list prices to 3 quotes" in g3.message
    [g4] = summary.g4
    assert "existing customers paid more than new ones" in g4.message
    assert g4.examples == ("b", "a")


def test_surcharge_unpublished_and_unexplained_lines_are_g4_findings() -> None:
    fee = DiscountLine("fee", "Fee", "Loyal fee.", -2.0)
    ghost = DiscountLine("ghost", "Ghost", "Unpublished.", 1.0)
    summary = audit_quotes(
        [
            _q("a", 10.0, LOYAL, final=12.0, lines=(fee,)),
            _q("b", 10.0, NEW, final=9.0, lines=(ghost,)),
            _q("c", 10.0, NEW, final=8.0),
        ],
        ProgramBook([WELCOME]),
    )
    messages = " | ".join(f.message for f in summary.g4)
    assert "surcharge line 'fee'" in messages
    assert "not a published program" in messages
    assert "not explained by a published program" in messages
    assert not summary.g3
