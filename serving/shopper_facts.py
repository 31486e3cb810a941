"""What the server knows of a shopper's history, for the audit groups of a quote (rule G4).

The fairness audits compare what existing customers (long tenure or frequent buyers) and new
ones were quoted for the same item, epoch and context. For that comparison to mean anything the
quote log must record each shopper's real band, so the tenure and order count are derived here
from two sources instead of trusting the storefront to send them:

- the serving bundle's training history (``interactions``: purchase sessions per user and item,
  and the last purchase of each): summarised once per bundle, off the request path when the
  bundle is swapped in, into one small row per known shopper;
- the events logged since the bundle's last training event (the same indexed per-shopper read
  that the recommender's fold-in uses, so a request costs at most that one lookup).

These facts only ever choose audit groups and program eligibility (a shopper with orders is not
a "new customer"); the guard proves at every quote that they never move a price.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from serving.reload import LoadedModel
from serving.store.events_store import Event

_DAY_SECONDS = 86_400.0

#: Device classes kept in the quote log; anything else is "other" (data minimisation: the
#: audit needs a coarse group, not a user agent).
DEVICE_CLASSES: frozenset[str] = frozenset({"ios", "android", "web", "app", "unknown"})


def coarse_device(device: str | None) -> str:
    """The coarse device class recorded as the audit group.

    Parameters
    ----------
    device:
        What the storefront sent (``"iOS"``, ``"android"``, ``"web"``, a user agent, ...).

    Returns
    -------
    str
        One of :data:`DEVICE_CLASSES` or ``"other"``.
    """
    text = (device or "").strip().lower()
    if not text:
        return "unknown"
    if text in DEVICE_CLASSES:
        return text
    # Common spellings of the same classes; never the raw string, which may identify a device.
    if "iphone" in text or "ipad" in text or text.startswith("ios"):
        return "ios"
    if "android" in text:
        return "android"
    if text in {"desktop", "mobile-web", "mobile_web", "browser"}:
        return "web"
    return "other"


@dataclass(frozen=True)
class ShopperHistory:
    """A shopper's known history: order count and a lower bound of the account's age.

    Parameters
    ----------
    orders:
        Purchase sessions known to the server.
    first_seen:
        The earliest moment the shopper is known to have been a customer, or ``None``.
    """

    orders: int = 0
    first_seen: datetime | None = None

    def tenure_days(self, now: datetime) -> float:
        """Days between :attr:`first_seen` and ``now`` (0 when unknown or in the future)."""
        if self.first_seen is None:
            return 0.0
        return max(0.0, (now - self.first_seen).total_seconds() / _DAY_SECONDS)


_EMPTY = ShopperHistory()


class _BundleTable:
    """The per-shopper summary of one bundle's training history."""

    def __init__(self, model: LoadedModel) -> None:
        bundle = model.bundle
        inter = bundle.interactions
        self.bundle_id = model.bundle_id
        self.index = bundle.user_index()
        n_users = len(bundle.user_ids)
        users = inter["user_index"].to_numpy(dtype=np.int64)
        # Distinct purchase sessions per (user, item), summed: the order count the training
        # data supports (an order of several items counts once per item; an upper estimate
        # of sessions, but zero exactly when the shopper never bought).
        self.orders = np.bincount(
            users, weights=inter["purchases"].to_numpy(dtype=np.float64), minlength=n_users
        ).astype(np.int64)
        # The earliest of a shopper's last purchases is no later than their first purchase,
        # so it bounds the account's age from below.
        first = (
            inter.loc[inter["last_purchase"].notna(), ["user_index", "last_purchase"]]
            .groupby("user_index")["last_purchase"]
            .min()
        )
        self.first_us = np.full(n_users, np.iinfo(np.int64).max, dtype=np.int64)
        if len(first):
            # To naive UTC first: numpy has no time zones.
            stamps = pd.to_datetime(first, utc=True).dt.tz_convert(None)
            self.first_us[first.index.to_numpy(dtype=np.int64)] = (
                stamps.to_numpy().astype("datetime64[us]").astype(np.int64)
            )
        # A shopper seen in training without a purchase was at least there by its last event.
        last = model.trained_until
        self.seen_by = last.astimezone(UTC) if last is not None else None

    def history(self, user_id: str) -> ShopperHistory:
        u = self.index.get(user_id)
        if u is None:
            return _EMPTY
        first_us = int(self.first_us[u])
        if first_us != np.iinfo(np.int64).max:
            first: datetime | None = datetime.fromtimestamp(first_us / 1e6, UTC)
        else:
            first = self.seen_by
        return ShopperHistory(orders=int(self.orders[u]), first_seen=first)


class ShopperFacts:
    """Tenure and order counts of shoppers, from the bundle and the event log since.

    The bundle summary is built once per bundle (:meth:`on_model`, called by the server on
    every swap; lazily on first use otherwise) and then read without locks.
    """

    def __init__(self) -> None:
        self._table: _BundleTable | None = None
        self._lock = threading.Lock()

    def on_model(self, model: LoadedModel) -> None:
        """Summarise a newly loaded bundle (in the watcher thread, off the request path)."""
        table = _BundleTable(model)
        self._table = table

    def _table_for(self, model: LoadedModel) -> _BundleTable:
        table = self._table
        if table is not None and table.bundle_id == model.bundle_id:
            return table
        with self._lock:
            table = self._table
            if table is None or table.bundle_id != model.bundle_id:
                table = self._table = _BundleTable(model)
            return table

    def history(self, model: LoadedModel, user_id: str, recent: Sequence[Event]) -> ShopperHistory:
        """The history of ``user_id``: training summary plus ``recent`` logged events.

        Parameters
        ----------
        model:
            The bundle serving this request.
        user_id:
            The shopper.
        recent:
            The shopper's events logged after the bundle's last training event.

        Returns
        -------
        ShopperHistory
        """
        base = self._table_for(model).history(user_id)
        if not recent:
            return base
        # A purchase session is one order; any logged event shows the shopper was there.
        sessions = {ev.session_id or ev.event_id for ev in recent if ev.event_type == "purchase"}
        earliest = min(ev.timestamp for ev in recent)
        first = base.first_seen
        if first is None or earliest < first:
            first = earliest
        return ShopperHistory(orders=base.orders + len(sessions), first_seen=first)
