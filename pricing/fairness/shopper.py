"""The shopper, and the request scope it lives in: the only place a shopper exists in pricing.

A :class:`Shopper` is what the storefront knows about the person asking for a quote. It is
needed for exactly two things: deciding which *published* discount programs the shopper
qualifies for (rule G4), and recording coarse shopper groups in the quote log so that audits
can prove that nobody paid more because of who they are (rules G3, G4). It is never an input
to a price: the pricing engine and its policies do not import this module, and the guard
(:mod:`pricing.fairness.guard`) proves at every quote that the price did not depend on it.

The request scope (:data:`REQUEST_SCOPE`) is the context variable the serving layer and the
guard set while a request is handled (for request ids in logs, for example). It is also the
most obvious side channel a hostile policy could read, which is why the guard computes the
shopper-free price in a scope where it is empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final

from fairshelf.errors import InvalidArgument

# Tenure and frequency bands used by the audits; coarse on purpose (data minimisation).
NEW_CUSTOMER_MAX_DAYS: Final[float] = 30.0
LONG_TENURE_MIN_DAYS: Final[float] = 365.0
FREQUENT_MIN_ORDERS: Final[int] = 5


@dataclass(frozen=True)
class Shopper:
    """The person asking for a quote, as far as the storefront knows them.

    Parameters
    ----------
    shopper_id:
        The storefront's id of the shopper ("" for an anonymous visitor). Never stored in the
        quote log.
    tenure_days:
        Days since the account was created (0 for a new or anonymous shopper).
    orders:
        Number of past orders.
    device:
        Device class ("ios", "android", "web", ...), recorded only as an audit group.
    member:
        Whether the shopper holds the store's published membership.
    coupon_codes:
        Public coupon codes the shopper entered.
    """

    shopper_id: str = ""
    tenure_days: float = 0.0
    orders: int = 0
    device: str = "unknown"
    member: bool = False
    coupon_codes: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.tenure_days < 0:
            raise InvalidArgument(
                f"shopper tenure_days must be >= 0, got {self.tenure_days!r}", field="tenure_days"
            )
        if self.orders < 0:
            raise InvalidArgument(
                f"shopper orders must be >= 0, got {self.orders!r}", field="orders"
            )
        object.__setattr__(self, "coupon_codes", frozenset(self.coupon_codes))

    @property
    def is_new_customer(self) -> bool:
        """True for a shopper without past orders: the audience of new-customer programs."""
        return self.orders == 0


ANONYMOUS: Final[Shopper] = Shopper()


@dataclass(frozen=True)
class ShopperGroup:
    """The coarse groups a quote is logged under, so audits can compare them.

    Parameters
    ----------
    tenure:
        ``"new"``, ``"regular"`` or ``"long"``.
    frequency:
        ``"none"``, ``"occasional"`` or ``"frequent"``.
    device:
        The device class.
    """

    tenure: str
    frequency: str
    device: str

    @property
    def is_existing(self) -> bool:
        """A long-tenure or frequent shopper: the people 大数据杀熟 targets."""
        return self.tenure == "long" or self.frequency == "frequent"

    @property
    def is_new(self) -> bool:
        """A shopper without order history or with a young account."""
        return self.tenure == "new" and self.frequency == "none"


_GROUPS: dict[tuple[float, int, str], ShopperGroup] = {}


def group_of(shopper: Shopper) -> ShopperGroup:
    """The audit group of ``shopper``.

    Parameters
    ----------
    shopper:
        The shopper.

    Returns
    -------
    ShopperGroup
        Tenure band, order-frequency band and device class.
    """
    # Memoised: it is asked once per quote request, and the bands are few.
    key = (shopper.tenure_days, shopper.orders, shopper.device)
    group = _GROUPS.get(key)
    if group is None:
        if len(_GROUPS) > 50_000:
            _GROUPS.clear()
        group = _GROUPS[key] = _group_of(shopper)
    return group


def _group_of(shopper: Shopper) -> ShopperGroup:
    if shopper.tenure_days >= LONG_TENURE_MIN_DAYS:
        tenure = "long"
    elif shopper.tenure_days < NEW_CUSTOMER_MAX_DAYS and shopper.orders == 0:
        tenure = "new"
    else:
        tenure = "regular"
    if shopper.orders == 0:
        frequency = "none"
    elif shopper.orders < FREQUENT_MIN_ORDERS:
        frequency = "occasional"
    else:
        frequency = "frequent"
    return ShopperGroup(tenure=tenure, frequency=frequency, device=shopper.device or "unknown")


@dataclass(frozen=True)
class RequestScope:
    """What the current request carries: its id and, for a quote, the shopper."""

    request_id: str
    shopper: Shopper | None = None


REQUEST_SCOPE: ContextVar[RequestScope | None] = ContextVar("fairshelf_request_scope", default=None)


@contextmanager
def request_scope(request_id: str, shopper: Shopper | None = None) -> Iterator[RequestScope]:
    """Set the request scope for the duration of a ``with`` block.

    Parameters
    ----------
    request_id:
        The request id (logged on every line).
    shopper:
        The shopper, when the request is about one.

    Yields
    ------
    RequestScope
        The scope now visible through :data:`REQUEST_SCOPE`.
    """
    scope = RequestScope(request_id=request_id, shopper=shopper)
    token = REQUEST_SCOPE.set(scope)
    try:
        yield scope
    finally:
        REQUEST_SCOPE.reset(token)
