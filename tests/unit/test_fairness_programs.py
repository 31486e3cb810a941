"""Rule G4 programs: declared, public, reduce-only, applied in order as their own lines."""

from __future__ import annotations

import pytest

from fairshelf.errors import PolicyRejected
from pricing.fairness.programs import DiscountProgram, Eligibility, ProgramBook
from pricing.fairness.shopper import Shopper, group_of

WELCOME = DiscountProgram("w", "Welcome", "10% off a first order.", Eligibility.NEW_CUSTOMER, 10)
CODE = DiscountProgram(
    "c",
    "Spring code",
    "Enter SPRING for 3 off.",
    Eligibility.COUPON_CODE,
    amount_off=3,
    code="SPRING",
)
ALL = DiscountProgram(
    "a",
    "Toy week",
    "5% off toys for everyone.",
    Eligibility.EVERYONE,
    5,
    categories=frozenset({"toys"}),
)


def test_invalid_programs_are_refused() -> None:
    with pytest.raises(PolicyRejected, match="declares none"):
        DiscountProgram("x", "X", "text", Eligibility.COUPON_CODE, 5)
    with pytest.raises(PolicyRejected, match="takes nothing off"):
        DiscountProgram("x", "X", "text", Eligibility.EVERYONE)
    with pytest.raises(PolicyRejected, match="<= 90"):
        DiscountProgram("x", "X", "text", Eligibility.EVERYONE, 95)
    with pytest.raises(PolicyRejected, match="declared twice"):
        ProgramBook([WELCOME, WELCOME])
    with pytest.raises(PolicyRejected, match="not a declared DiscountProgram"):
        ProgramBook([object()])  # type: ignore[list-item]


def test_programs_apply_in_order_on_the_running_price() -> None:
    book = ProgramBook([WELCOME, CODE, ALL])
    shopper = Shopper("s", orders=0, coupon_codes=frozenset({"SPRING"}))
    out = book.apply(20.0, "toys/outdoor", shopper)
    assert [(line.program_id, line.amount) for line in out.lines] == [
        ("w", 2.0),
        ("c", 3.0),
        ("a", 0.75),
    ]
    assert out.final_price == 14.25
    loyal = Shopper("l", tenure_days=900, orders=30)
    assert book.apply(20.0, "home/kitchen", loyal).lines == ()
    assert book.apply(20.0, "home/kitchen", loyal).final_price == 20.0


def test_a_program_never_takes_a_price_below_one_cent() -> None:
    big = DiscountProgram("b", "Big", "50 off.", Eligibility.EVERYONE, amount_off=50)
    out = ProgramBook([big]).apply(4.0, "", Shopper())
    assert out.final_price == 0.01 and out.lines[0].amount == 3.99


def test_groups_are_coarse_bands() -> None:
    assert group_of(Shopper("a", 0, 0, "ios")).tenure == "new"
    assert group_of(Shopper("a", 100, 2)).frequency == "occasional"
    g = group_of(Shopper("a", 400, 7, "web"))
    assert (g.tenure, g.frequency, g.device) == ("long", "frequent", "web") and g.is_existing


def test_programs_round_trip_through_json_and_bad_documents_are_refused() -> None:
    book = ProgramBook([WELCOME, CODE, ALL])
    again = ProgramBook.from_json(book.to_json())
    assert again.programs == book.programs
    with pytest.raises(PolicyRejected, match="lacks 'public_text'"):
        ProgramBook.from_json([{"program_id": "x", "title": "X", "eligibility": "everyone"}])
    with pytest.raises(PolicyRejected, match="unknown field"):
        ProgramBook.from_json([{**WELCOME.to_json(), "surcharge": 3}])
    with pytest.raises(PolicyRejected, match="would raise prices"):
        ProgramBook.from_json([{**WELCOME.to_json(), "percent_off": -10}])
    with pytest.raises(PolicyRejected, match="loyal"):
        ProgramBook.from_json([{**WELCOME.to_json(), "eligibility": "loyal"}])
