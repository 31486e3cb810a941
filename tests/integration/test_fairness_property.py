"""Property: a quoted price is a function of (item, epoch, public context, programs) alone.

For random shoppers (tenure, order count, device, membership, coupon codes) and random public
contexts (time, region, competitor prices, promotions):

- through a guard over an honest policy, the final price equals the price an anonymous visitor
  is quoted by a separate honest engine for the same item, epoch and public context, minus
  exactly the published programs this shopper qualifies for;
- through a guard over a policy that tries to surcharge loyal shoppers through two side
  channels (request scope and request object), the list price equals what an anonymous visitor
  is quoted by the same guard for the same item, epoch and context, and the final price is
  again that list price minus the shopper's published programs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fairness_fixtures import (
    AT,
    ITEMS,
    MEMBER_PRICE,
    NEW_COUPON,
    ContextVarSnoopPolicy,
    GuardedShop,
    HonestPolicy,
    ShopperAwareContext,
    make_shop,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing.context import PublicContext
from pricing.fairness.shopper import Shopper, request_scope
from pricing.promotions import Promotion, PromotionBook

CATEGORY = {s.item_id: s.category for s in ITEMS}
# Published promotions: one runs through the whole window, one only in its second half.
PROMOTIONS = PromotionBook(
    1,
    [
        Promotion("spring-sale", "Spring sale", "Store-wide offer", AT, AT + timedelta(hours=7)),
        Promotion(
            "free-shipping",
            "Free shipping",
            "No delivery fee",
            AT + timedelta(hours=3),
            AT + timedelta(hours=7),
        ),
    ],
)


@pytest.fixture(scope="module")
def shops(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GuardedShop, GuardedShop, GuardedShop]]:
    root: Path = tmp_path_factory.mktemp("fairness_property")
    kw: dict[str, Any] = {"buffer_quotes": True, "promotions": PROMOTIONS}
    hostile = make_shop(root / "hostile.db", ContextVarSnoopPolicy(), **kw)
    honest = make_shop(root / "honest.db", HonestPolicy(), **kw)
    reference = make_shop(root / "reference.db", HonestPolicy(), (), **kw)
    yield hostile, honest, reference
    for shop in (hostile, honest, reference):
        shop.close()


shoppers = st.builds(
    Shopper,
    shopper_id=st.text("abcdef0123456789", min_size=1, max_size=8),
    tenure_days=st.floats(0, 4000, allow_nan=False),
    orders=st.integers(0, 200),
    device=st.sampled_from(["ios", "android", "web", "mini-program"]),
    member=st.booleans(),
    coupon_codes=st.frozensets(st.sampled_from(["SPRING", "VIP"]), max_size=2),
)

contexts: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    minutes=st.integers(0, 6 * 60),
    region=st.sampled_from([None, "CN-31", "CN-11"]),
    rivals=st.dictionaries(
        st.sampled_from([s.item_id for s in ITEMS]), st.floats(5, 80, allow_nan=False), max_size=4
    ),
    promotions=st.frozensets(st.sampled_from(["spring-sale", "free-shipping"]), max_size=2),
)


def _expected_discounts(list_price: float, item_id: str, shopper: Shopper) -> float:
    # Written out independently of ProgramBook: welcome 10% for no orders, then member 5% on
    # kitchen items, each on the running price, in cents.
    price = list_price
    if shopper.orders == 0:
        price = round(price - round(price * NEW_COUPON.percent_off / 100, 2), 2)
    if shopper.member and CATEGORY[item_id].startswith("home/kitchen"):
        price = round(price - round(price * MEMBER_PRICE.percent_off / 100, 2), 2)
    return price


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    shopper=shoppers,
    spec=contexts,
    items=st.lists(
        st.sampled_from([s.item_id for s in ITEMS]), min_size=1, max_size=5, unique=True
    ),
)
def test_price_depends_only_on_item_epoch_context_and_programs(
    shops: tuple[GuardedShop, GuardedShop, GuardedShop],
    shopper: Shopper,
    spec: dict[str, Any],
    items: list[str],
) -> None:
    hostile, honest, reference = shops
    at = AT + timedelta(minutes=spec["minutes"])
    public = dict(
        region=spec["region"],
        competitor_prices=spec["rivals"],
        # A request may name only running promotions; the running ones are added anyway.
        promotions=tuple(sorted(set(spec["promotions"]) & set(PROMOTIONS.running_at(at)))),
    )
    anonymous = reference.service.quote(items, PublicContext(at=at, **public))
    hostile_anonymous = hostile.service.quote(items, PublicContext(at=at, **public))
    with request_scope("prop", shopper):
        fair = honest.service.quote(items, PublicContext(at=at, **public), shopper)
        attacked = hostile.service.quote(
            items, ShopperAwareContext(at=at, shopper=shopper, **public), shopper
        )
    for q, ref in zip(fair, anonymous, strict=True):
        assert (q.item_id, q.epoch, q.list_price) == (ref.item_id, ref.epoch, ref.list_price)
        assert q.final_price == _expected_discounts(ref.list_price, q.item_id, shopper)
    for q, ref in zip(attacked, hostile_anonymous, strict=True):
        assert (q.item_id, q.epoch, q.list_price) == (ref.item_id, ref.epoch, ref.list_price)
        assert q.final_price == _expected_discounts(ref.list_price, q.item_id, shopper)
