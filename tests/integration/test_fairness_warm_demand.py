"""The epoch warm-up follows demand (pricing.fairness.guard.FairQuoteService.warm_demanded):
the items quoted in one epoch are pinned at the start of the next, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from fairness_fixtures import AT, ITEMS, HonestPolicy, built_service, ctx_at, make_shop

from pricing.catalog import PricingCatalog
from pricing.fairness import guard as guard_module
from pricing.fairness.shopper import Shopper


def test_the_next_epoch_warms_exactly_the_items_quoted(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "w.db", HonestPolicy())
    clock = shop.service.clock
    try:
        epoch = clock.index(AT)
        shop.service.quote(["sku-001", "sku-004"], ctx_at())
        shop.service.quote(["sku-004", "sku-007"], ctx_at(), Shopper("s", 400, 9))
        nxt = ctx_at(clock.start(epoch + 1))
        assert shop.service.warm_demanded(nxt) == 3
        # Pinned for the new epoch: warming them again pins nothing; an unquoted item is new.
        assert shop.service.warm(nxt, ["sku-001", "sku-004", "sku-007"]) == 0
        assert shop.service.warm(nxt, ["sku-002"]) == 1
        # Nothing was quoted since: the epoch after warms nothing at all.
        assert shop.service.warm_demanded(ctx_at(clock.start(epoch + 2))) == 0
        # Quotes served from the warm pins are the prices a cold request would get.
        warm = shop.service.quote(["sku-004"], nxt)[0]
        cold = make_shop(tmp_path / "c.db", HonestPolicy())
        try:
            assert cold.service.quote(["sku-004"], nxt)[0].final_price == warm.final_price
        finally:
            cold.close()
    finally:
        shop.close()


def test_items_gone_from_the_catalogue_are_not_warmed(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "g.db", HonestPolicy())
    clock = shop.service.clock
    try:
        shop.service.quote(["sku-001", "sku-002", "sku-003"], ctx_at())
        kept = {s.item_id: s for s in ITEMS if s.item_id != "sku-002"}
        shop.service.set_catalog(PricingCatalog(kept))  # a new bundle dropped sku-002
        nxt = ctx_at(clock.start(clock.index(AT) + 1))
        assert shop.service.warm_demanded(nxt) == 2
    finally:
        shop.close()


def test_the_built_service_warms_the_demand_at_each_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The timer itself is tested in tests/unit/test_fairness_epoch_warmer.py; here, what the
    # service built for serving hands it to run at a boundary.
    handed: list[Callable[[datetime], object]] = []

    class Timer:
        def __init__(self, clock: object, warm: Callable[[datetime], object]) -> None:
            handed.append(warm)

        def start(self) -> Timer:
            return self

        def stop(self) -> None:
            pass

    monkeypatch.setattr(guard_module, "EpochWarmer", Timer)
    with built_service(tmp_path / "b.db") as service:
        service.quote(["sku-003", "sku-005"], ctx_at())
        (warm,) = handed
        clock = service.clock
        assert warm(clock.start(clock.index(AT) + 1)) == 2
        assert warm(clock.start(clock.index(AT) + 2)) == 0


def test_demand_survives_a_failed_warm_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shop = make_shop(tmp_path / "f.db", HonestPolicy())
    clock = shop.service.clock
    try:
        shop.service.quote(["sku-001", "sku-002"], ctx_at())
        nxt = ctx_at(clock.start(clock.index(AT) + 1))

        def down(*args: object, **kwargs: object) -> int:
            raise OSError("price history store is down")

        with monkeypatch.context() as m:
            m.setattr(shop.service, "warm", down)
            with pytest.raises(OSError):
                shop.service.warm_demanded(nxt)
        assert shop.service.warm_demanded(nxt) == 2  # retried at the next boundary
    finally:
        shop.close()
