"""Tests of pricing.guardrail_audit: the independent checker catches each kind of violation."""

from __future__ import annotations

from pricing.guardrail_audit import GuardrailAuditor, ServedPrice
from pricing.guardrail_rules import Guardrail

RULES = [
    Guardrail("global", floor=5.0, ceiling=50.0, max_change_pct=0.1, price_ending=0.99),
    Guardrail("category", "home", min_margin=0.2),
    Guardrail("item", "X", ceiling=30.0),
]
H = 3600.0


def _sp(
    item: str, t: float, price: float, cat: str = "home", cost: float = 10.0, base: float = 20.0
) -> ServedPrice:
    return ServedPrice(item, cat, base_price=base, unit_cost=cost, start=t, price=price)


def test_clean_sequence_passes() -> None:
    audit = GuardrailAuditor(RULES)
    result = audit.check_all(
        [
            _sp("A", 0, 19.99),
            _sp("A", H, 20.99),
            _sp("A", 30 * H, 22.99),
            _sp("X", 0, 29.99, base=29.0),
        ]
    )
    assert result.checked == 4 and result.total_violations == 0


def test_each_rule_is_caught() -> None:
    audit = GuardrailAuditor(RULES)
    audit.check(_sp("A", 0, 4.99, cat="toys", cost=1.0, base=10.5))  # below floor
    audit.check(_sp("X", 0, 31.99, base=31.0))  # above the item ceiling
    audit.check(_sp("B", 0, 11.99, base=12.0))  # below cost * 1.2
    audit.check(_sp("C", 0, 20.00))  # wrong ending
    audit.check(_sp("D", 0, 20.99))
    audit.check(_sp("D", 23 * H, 23.99))  # +14 % within 24 h
    v = audit.result.violations
    # 4.99 also breaks the default min_ratio (0.5 x base 10.5) and, as the first quote, moves
    # more than 10 % from the shelf price.
    assert v["floor"] == 1 and v["min_ratio"] == 1
    assert v["ceiling"] == 1 and v["min_margin"] == 1
    assert v["price_ending"] == 1 and v["max_change_pct"] == 2
    assert audit.result.total_violations == 7


def test_price_older_than_a_day_no_longer_binds() -> None:
    audit = GuardrailAuditor(RULES)
    audit.check(_sp("D", 0, 20.99))
    audit.check(_sp("D", 24 * H, 22.99))
    audit.check(_sp("D", 49 * H, 24.99))
    assert audit.result.total_violations == 0


def test_first_served_price_is_held_to_the_change_limit_from_the_shelf_price() -> None:
    audit = GuardrailAuditor(RULES)
    audit.check(_sp("E", 0, 29.99))  # +50 % over the shelf price 20 at the first quote
    assert audit.result.violations["max_change_pct"] == 1
