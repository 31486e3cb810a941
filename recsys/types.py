"""Request and response types of the recommendation path (SPEC §5).

These are the boundary of ``recsys``: the service object in ``serving`` builds a
:class:`RecommendRequest` from a gRPC or HTTP message, passes the shopper's recent events as
:class:`RecentEvent` rows, and turns the :class:`Recommendation` back into a message. Every
type validates itself on construction and raises :class:`~fairshelf.errors.InvalidArgument`
naming the offending field, so both transports reject the same requests with the same text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

from fairshelf.errors import InvalidArgument
from recsys.schema import EVENT_TYPES

MAX_K: Final[int] = 1000
MAX_ID_LENGTH: Final[int] = 256

# Strategies: which branch of the recommender produced the list.
STRATEGY_TRAINED: Final[str] = "trained_vector"
STRATEGY_FOLD_IN: Final[str] = "fold_in"
STRATEGY_SESSION: Final[str] = "session_tower"
STRATEGY_TRENDING: Final[str] = "trending"
STRATEGY_NON_PERSONALIZED: Final[str] = "non_personalized"
STRATEGIES: Final[tuple[str, ...]] = (
    STRATEGY_TRAINED,
    STRATEGY_FOLD_IN,
    STRATEGY_SESSION,
    STRATEGY_TRENDING,
    STRATEGY_NON_PERSONALIZED,
)

# Reason codes: why one item is in the list (one per item, the strongest one).
REASON_PROFILE: Final[str] = "matches_profile"
REASON_RECENT: Final[str] = "recent_activity"
REASON_SESSION: Final[str] = "session_interest"
REASON_BUY_AGAIN: Final[str] = "buy_again"
REASON_TRENDING: Final[str] = "trending"
REASON_TRENDING_CATEGORY: Final[str] = "trending_in_category"
REASON_SIMILAR: Final[str] = "similar_item"
REASON_BOOSTED: Final[str] = "promoted"
REASON_CODES: Final[tuple[str, ...]] = (
    REASON_PROFILE,
    REASON_RECENT,
    REASON_SESSION,
    REASON_BUY_AGAIN,
    REASON_TRENDING,
    REASON_TRENDING_CATEGORY,
    REASON_SIMILAR,
    REASON_BOOSTED,
)


# Reason code -> small integer, so candidate lists carry reasons as one int8 array and only the
# final k are turned into strings.
REASON_INDEX: Final[dict[str, int]] = {reason: i for i, reason in enumerate(REASON_CODES)}


def check_id(value: object, field_name: str) -> str:
    """Return ``value`` if it is a usable identifier, else raise naming ``field_name``.

    Parameters
    ----------
    value:
        Candidate identifier.
    field_name:
        Request field reported in the error.

    Returns
    -------
    str
        The identifier unchanged.

    Raises
    ------
    InvalidArgument
        If the value is not a string, is blank, or is longer than 256 characters.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{field_name} must be a non-empty string", field=field_name)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument(
            f"{field_name} is longer than {MAX_ID_LENGTH} characters", field=field_name
        )
    return value


def check_k(k: object, field_name: str = "k") -> int:
    """Return ``k`` if it is an int in ``[1, 1000]``, else raise naming ``field_name``."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise InvalidArgument(f"{field_name} must be an integer, got {k!r}", field=field_name)
    if k < 1 or k > MAX_K:
        raise InvalidArgument(
            f"{field_name} must be between 1 and {MAX_K}, got {k}", field=field_name
        )
    return k


def _check_price(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"filters.{name} must be a number, got {value!r}", field=name)
    if not math.isfinite(value) or value < 0:
        raise InvalidArgument(
            f"filters.{name} must be a finite number >= 0, got {value!r}", field=name
        )
    return float(value)


def _check_categories(values: tuple[str, ...], name: str) -> tuple[str, ...]:
    out = tuple(values)
    for v in out:
        check_id(v, name)
    return out


@dataclass(frozen=True)
class Filters:
    """Which candidates may appear in a list.

    Parameters
    ----------
    exclude_purchased:
        Drop items the shopper bought (training history plus purchases passed as recent
        events). Buy-again suggestions are only made when this is ``False``.
    in_stock_only:
        Drop items whose stock is known to be zero.
    include_categories:
        When non-empty, keep only items in one of these categories. A category matches itself
        and every path below it (``"home"`` matches ``"home/kitchen"``). Unknown categories
        are not an error; they match nothing.
    exclude_categories:
        Drop items in these categories (same prefix matching).
    min_price, max_price:
        Inclusive bounds on the item's base price.

    Raises
    ------
    InvalidArgument
        On a negative or non-finite price, ``min_price > max_price``, or a blank category.
    """

    exclude_purchased: bool = True
    in_stock_only: bool = True
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "include_categories",
            _check_categories(self.include_categories, "include_categories"),
        )
        object.__setattr__(
            self,
            "exclude_categories",
            _check_categories(self.exclude_categories, "exclude_categories"),
        )
        lo = _check_price(self.min_price, "min_price")
        hi = _check_price(self.max_price, "max_price")
        if lo is not None and hi is not None and lo > hi:
            raise InvalidArgument(
                f"filters.min_price ({lo}) must not exceed filters.max_price ({hi})",
                field="min_price",
            )
        object.__setattr__(self, "min_price", lo)
        object.__setattr__(self, "max_price", hi)

    @property
    def restricts_items(self) -> bool:
        """Whether any item-attribute filter (category or price) is set."""
        return bool(
            self.include_categories
            or self.exclude_categories
            or self.min_price is not None
            or self.max_price is not None
        )


@dataclass(frozen=True)
class RequestContext:
    """Where the list will be shown; public facts only.

    Parameters
    ----------
    surface:
        Page or slot, e.g. ``"home"``, ``"cart"``, ``"product"``; recorded, not interpreted.
    category:
        Category being browsed; trending lists for unknown shoppers come from it.
    item_id:
        Product being viewed, if any; its category is used like ``category`` when that is
        not given.
    """

    surface: str = "home"
    category: str | None = None
    item_id: str | None = None

    def __post_init__(self) -> None:
        check_id(self.surface, "context.surface")
        if self.category is not None:
            check_id(self.category, "context.category")
        if self.item_id is not None:
            check_id(self.item_id, "context.item_id")


@dataclass(frozen=True)
class RecommendRequest:
    """One call to :meth:`recsys.recommender.Recommender.recommend`.

    Parameters
    ----------
    user_id:
        Shopper identifier; known, recently active, or never seen.
    k:
        Number of items wanted, 1..1000. Fewer are returned only when filters leave fewer.
    context:
        Page context (category for trending).
    filters:
        Candidate filters.
    personalized:
        ``False`` asks for the non-personalised list (the shopper's choice in this call; a
        stored opt-out is passed to ``recommend`` separately and always wins).

    Raises
    ------
    InvalidArgument
        For a blank or overlong ``user_id`` or ``k`` outside 1..1000.
    """

    user_id: str
    k: int = 20
    context: RequestContext = field(default_factory=RequestContext)
    filters: Filters = field(default_factory=Filters)
    personalized: bool = True

    def __post_init__(self) -> None:
        check_id(self.user_id, "user_id")
        check_k(self.k)
        if not isinstance(self.context, RequestContext):
            raise InvalidArgument("context must be a RequestContext", field="context")
        if not isinstance(self.filters, Filters):
            raise InvalidArgument("filters must be a Filters", field="filters")


class EventLike(Protocol):
    """What the recommender reads from an event: :class:`RecentEvent` or any object with
    these attributes (e.g. the serving event store's own row type)."""

    @property
    def item_id(self) -> str: ...

    @property
    def event_type(self) -> str: ...

    @property
    def timestamp(self) -> datetime: ...

    @property
    def quantity(self) -> int: ...


@dataclass(frozen=True)
class RecentEvent:
    """One of the shopper's events logged after the bundle's training cut-off.

    Parameters
    ----------
    item_id:
        Item the event is about.
    event_type:
        One of :data:`recsys.schema.EVENT_TYPES`.
    timestamp:
        Timezone-aware event time (converted to UTC).
    quantity:
        Units (>= 1); matters for purchases.
    """

    item_id: str
    event_type: str
    timestamp: datetime
    quantity: int = 1

    def __post_init__(self) -> None:
        check_id(self.item_id, "item_id")
        if self.event_type not in EVENT_TYPES:
            raise InvalidArgument(
                f"event_type must be one of {', '.join(EVENT_TYPES)}, got {self.event_type!r}",
                field="event_type",
            )
        if not isinstance(self.timestamp, datetime) or self.timestamp.tzinfo is None:
            raise InvalidArgument("timestamp must be a timezone-aware datetime", field="timestamp")
        object.__setattr__(self, "timestamp", self.timestamp.astimezone(UTC))
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise InvalidArgument("quantity must be an integer", field="quantity")
        if self.quantity < 1:
            raise InvalidArgument(f"quantity must be >= 1, got {self.quantity}", field="quantity")


@dataclass(frozen=True)
class RecommendedItem:
    """One ranked item.

    Parameters
    ----------
    item_id:
        Catalog identifier.
    score:
        Final ranking score (higher is better); comparable only within one response.
    reason:
        One of :data:`REASON_CODES`.
    """

    item_id: str
    score: float
    reason: str


@dataclass(frozen=True)
class Recommendation:
    """The answer to one recommend call.

    Parameters
    ----------
    items:
        Ranked items, best first, at most ``k``.
    model_version:
        Identifier of the bundle that produced the list.
    variant:
        Experiment variant the shopper is assigned to (also for non-personalised lists, so
        exposure can be logged consistently).
    personalized:
        Whether the list used anything about this shopper.
    strategy:
        One of :data:`STRATEGIES`.
    """

    items: tuple[RecommendedItem, ...]
    model_version: str
    variant: str
    personalized: bool
    strategy: str
