"""What the storefront may and may not steer in the public context of a quote.

The storefront sends the region and may name promotions with every quote request, and the
guard treats the public context as the thing a price may depend on. Two consequences are
handled here, before the guard prices anything:

- **Promotions are server facts.** The context a quote is priced in carries exactly the
  promotions running at its time (:class:`~pricing.promotions.PromotionBook`); naming one that
  is not running is refused, and leaving one out changes nothing.
- **Region stays a request input, so it is watched.** Every quote is logged with a day-scoped
  keyed pseudonym of the shopper (:func:`day_ref`), so the audit can see one shopper quoted
  under several regions in one day (:mod:`pricing.fairness.steering`). The pseudonym changes
  every UTC day and cannot be linked across days or back to the shopper without the key.
"""

from __future__ import annotations

import hmac
from datetime import date, datetime

from pricing.context import PublicContext
from pricing.promotions import PromotionBook


def with_running_promotions(book: PromotionBook, ctx: PublicContext) -> PublicContext:
    """``ctx`` carrying exactly the promotions running at ``ctx.at``.

    The object is copied rather than rebuilt, so a request object that is a subclass of
    :class:`PublicContext` (or carries extra attributes) keeps them: the guard's
    shopper-scoped run must see the caller's object as it was, only with the server's
    promotions.

    Raises
    ------
    NotFound, FailedPrecondition
        The request names a promotion that is not published, or not running (field
        ``promotions``).
    """
    running = book.resolve(ctx.promotions, ctx.at)
    if ctx.promotions == running:
        return ctx
    # A shallow copy by hand: copy.copy of a dataclass costs ten times as much, per request.
    out = object.__new__(type(ctx))
    out.__dict__.update(vars(ctx))
    out.__dict__["promotions"] = running
    return out


def day_ref(key: bytes, shopper_id: str, at: datetime) -> str:
    """A keyed pseudonym of ``shopper_id`` valid for the UTC day of ``at`` ("" if anonymous).

    Parameters
    ----------
    key:
        Secret pseudonym key (the server's ``pseudonym_key``).
    shopper_id:
        The storefront's shopper id.
    at:
        Quote time (UTC).

    Returns
    -------
    str
        16 hex characters: enough to tell a day's shoppers apart, too few to be an id.
    """
    if not shopper_id:
        return ""
    msg = f"{at.date().isoformat()}|{shopper_id}".encode()
    return hmac.digest(key, msg, "sha256")[:8].hex()


class DayPseudonyms:
    """:func:`day_ref` with the day's answers kept: one dictionary read per request.

    Parameters
    ----------
    key:
        Secret pseudonym key.
    max_size:
        Pseudonyms kept at most (the cache starts afresh beyond it, and every day).
    """

    def __init__(self, key: bytes, max_size: int = 200_000) -> None:
        self._key = key
        self._max = max_size
        self._day: date | None = None
        self._refs: dict[str, str] = {}

    def ref(self, shopper_id: str, at: datetime) -> str:
        """The pseudonym of ``shopper_id`` for the UTC day of ``at``."""
        day = at.date()
        if day != self._day or len(self._refs) > self._max:
            # Requests of two days may interleave around midnight; the answer stays right,
            # only the cache is rebuilt.
            self._day, self._refs = day, {}
        refs = self._refs
        found = refs.get(shopper_id)
        if found is None:
            found = refs[shopper_id] = day_ref(self._key, shopper_id, at)
        return found
