"""Storefronts seen from the caller side: a regional pricing policy, and quote logs of whole
simulated stores (honest or steering) built from arrays, for the false-positive measurement.

The regional policy is a real :class:`~pricing.policy.PricingPolicy` that reads only public
inputs, region and promotions included: the kind a pricing team registers first, and the one
that lets a storefront steer prices through the "public" context it sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

import numpy as np

from pricing.context import ItemState, PublicContext
from pricing.fairness.quotes import Quote, context_key_text
from pricing.fairness.shopper import Shopper, ShopperGroup
from pricing.policy import PricingPolicy, Proposal

#: Markets really differ: Shanghai is dearer, Guangdong cheaper than the national price.
REGION_FACTOR: dict[str, float] = {"CN": 1.0, "CN-31": 1.10, "CN-44": 0.95}
SPRING_OFF = 0.10
_AT = datetime(2026, 3, 2, tzinfo=UTC)


class RegionalPolicy(PricingPolicy):
    """Base price times the region's factor, 10% off while the ``spring`` promotion runs."""

    name: ClassVar[str] = "regional"
    version: ClassVar[str] = "1"
    inputs: ClassVar[frozenset[str]] = frozenset({"base_price", "item_id", "region", "promotions"})

    def propose(self, item: ItemState, ctx: PublicContext, objective: str) -> Proposal:
        price = item.base_price * REGION_FACTOR.get(ctx.region or "CN", 1.0)
        if "spring" in ctx.promotions:
            price *= 1 - SPRING_OFF
        return Proposal(round(price, 2), ("REGIONAL",))


def loyal(n: int) -> Shopper:
    """An existing customer (long tenure, frequent)."""
    return Shopper(f"loyal-{n}", tenure_days=800 + n, orders=20 + n, device="ios")


def newcomer(n: int) -> Shopper:
    """A new customer (young account, no orders)."""
    return Shopper(f"new-{n}", tenure_days=1, orders=0, device="android")


_GROUPS = (
    ShopperGroup("long", "frequent", "ios"),  # existing
    ShopperGroup("new", "none", "web"),  # new
    ShopperGroup("regular", "occasional", "web"),  # neither
)


@dataclass(frozen=True)
class SimulatedStore:
    """One day of a store's quote log."""

    quotes: list[Quote]
    shoppers: int


def simulate_store(
    seed: int,
    *,
    steer: float = 0.0,
    shoppers: int = 400,
    items: int = 20,
    epochs: int = 24,
    regions: Sequence[tuple[str, float]] = (("CN", 0.5), ("CN-31", 0.3), ("CN-44", 0.2)),
) -> SimulatedStore:
    """A day of quotes of a regional store, drawn from arrays with a fixed seed.

    Every shopper has a home market drawn from ``regions`` (market, share) independently of
    their tenure group (40% existing, 40% new, 20% neither), visits 1-4 times at random
    epochs and is quoted 1-6 random items per visit in their market. Prices follow the market
    (``REGION_FACTOR``) and move from epoch to epoch, as a dynamic policy moves them. With
    ``steer`` > 0, that share of the existing customers is sent the dearest market instead
    (the hostile storefront).
    """
    rng = np.random.default_rng(seed)
    names = [r for r, _ in regions]
    share = np.array([s for _, s in regions], dtype=float)
    home = rng.choice(len(names), size=shoppers, p=share / share.sum())
    group = rng.choice(3, size=shoppers, p=[0.4, 0.4, 0.2])
    dearest = int(np.argmax([REGION_FACTOR[r] for r in names]))
    steered = (group == 0) & (rng.random(shoppers) < steer)
    home = np.where(steered, dearest, home)
    base = rng.uniform(5, 80, size=items).round(2)
    moves = rng.uniform(0.9, 1.1, size=(items, epochs))
    texts = [context_key_text(PublicContext(at=_AT, region=r)) for r in names]
    # One row per visit, then one row per quoted item: all drawn as arrays.
    visits = rng.integers(1, 5, size=shoppers)
    v_shopper = np.repeat(np.arange(shoppers), visits)
    v_epoch = rng.integers(epochs, size=v_shopper.size)
    v_items = rng.integers(1, 7, size=v_shopper.size)
    q_visit = np.repeat(np.arange(v_shopper.size), v_items)
    # Distinct items within a visit: a random order of the catalogue, cut per visit.
    order = np.argsort(rng.random((v_shopper.size, items)), axis=1)
    q_item = order[
        q_visit, np.arange(q_visit.size) - np.repeat(np.cumsum(v_items) - v_items, v_items)
    ]
    q_shopper = v_shopper[q_visit]
    q_epoch = v_epoch[q_visit]
    q_region = home[q_shopper]
    factor = np.array([REGION_FACTOR[r] for r in names])
    q_price = (base[q_item] * moves[q_item, q_epoch] * factor[q_region]).round(2)
    quotes = [
        Quote(
            f"q{seed:03d}{n:07d}",
            f"sku-{i}",
            e,
            texts[r],
            f"2026-03-02T{e % 24:02d}:30:00+00:00",
            p,
            p,
            float(base[i]),
            0.0,
            (),
            "regional",
            "1",
            (),
            "global",
            "0",
            (),
            _GROUPS[group[s]],
            "ok",
            None,
            f"ref{s:05d}",
        )
        for n, (i, e, r, p, s) in enumerate(
            zip(
                q_item.tolist(),
                q_epoch.tolist(),
                q_region.tolist(),
                q_price.tolist(),
                q_shopper.tolist(),
                strict=True,
            )
        )
    ]
    return SimulatedStore(quotes, shoppers)
