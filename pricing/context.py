"""What a price may depend on: the item's public state and the public context of the moment.

Nothing in this module can carry a shopper. :class:`PublicContext` is the whole of the
"public context" of SPEC §6 (time, coarse region, competitor prices, published promotions);
:class:`ItemState` is what the shop knows about an item, the same for every shopper.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from fairshelf.errors import InvalidArgument

_EMPTY: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True)
class PublicContext:
    """Public facts at quote time.

    Parameters
    ----------
    at:
        Quote time, timezone-aware (converted to UTC).
    region:
        A coarse, public market such as a country or state code; never a precise location.
    competitor_prices:
        item_id -> a competitor's public price for the same item.
    promotions:
        Names of published, store-wide promotions running now.
    """

    at: datetime
    region: str | None = None
    competitor_prices: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    promotions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise InvalidArgument("context.at must be timezone-aware", field="at")
        object.__setattr__(self, "at", self.at.astimezone(UTC))
        for item_id, price in self.competitor_prices.items():
            if not price > 0:
                raise InvalidArgument(
                    f"competitor price for {item_id!r} must be > 0, got {price!r}",
                    field="competitor_prices",
                )
        object.__setattr__(
            self, "competitor_prices", MappingProxyType(dict(self.competitor_prices))
        )

    def key(self) -> tuple[str, tuple[tuple[str, float], ...], tuple[str, ...]]:
        """A hashable identity of the public context, used to group quotes in audits."""
        return (
            self.region or "",
            tuple(sorted(self.competitor_prices.items())),
            tuple(sorted(self.promotions)),
        )


@dataclass(frozen=True)
class ItemState:
    """Everything a policy may know about one item. Identical for every shopper.

    ``current_price`` is the price served in the previous price epoch (``None`` before the
    first quote); ``elasticity`` and its standard error come from the trained bundle.
    """

    item_id: str
    category: str
    base_price: float
    unit_cost: float | None = None
    stock: int | None = None
    days_left: float | None = None
    elasticity: float | None = None
    elasticity_stderr: float | None = None
    current_price: float | None = None
    recent_demand: float | None = None
