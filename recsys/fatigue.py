"""Impression fatigue: items shown again and again without engagement sink (SPEC §5).

Only the events passed with the request are used (those logged since the bundle was trained),
so fatigue needs no state of its own and resets naturally when a new bundle absorbs the
history. An engagement (view, click, add to cart, purchase) on an item forgives every earlier
impression of it: the shopper did react, the item is not being ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

import numpy as np

from recsys.types import EventLike

ENGAGEMENT_TYPES: Final[frozenset[str]] = frozenset({"view", "click", "add_to_cart", "purchase"})


def unengaged_impressions(events: Sequence[EventLike]) -> dict[str, int]:
    """Count each item's impressions after its last engagement.

    Parameters
    ----------
    events:
        The shopper's recent events, in any order.

    Returns
    -------
    dict
        item_id -> impressions later than the item's last engagement (items with none are
        absent).
    """
    last_engaged: dict[str, datetime] = {}
    for ev in events:
        if ev.event_type in ENGAGEMENT_TYPES:
            t = last_engaged.get(ev.item_id)
            if t is None or ev.timestamp > t:
                last_engaged[ev.item_id] = ev.timestamp
    counts: dict[str, int] = {}
    for ev in events:
        if ev.event_type != "impression":
            continue
        t = last_engaged.get(ev.item_id)
        # An impression at the very moment of the engagement is the one the shopper clicked.
        if t is None or ev.timestamp > t:
            counts[ev.item_id] = counts.get(ev.item_id, 0) + 1
    return counts


def fatigue_penalties(
    candidates: np.ndarray,
    positions: Mapping[str, int],
    counts: Mapping[str, int],
    threshold: int,
    penalty: float,
) -> np.ndarray | None:
    """Penalty per candidate, in normalised-score units.

    An item with ``n >= threshold`` unengaged impressions loses
    ``penalty * (n - threshold + 1)``: the first demotion at the threshold, growing with every
    further ignored showing.

    Parameters
    ----------
    candidates:
        int64 item indices.
    positions:
        item_id -> item index (the bundle's map).
    counts:
        Output of :func:`unengaged_impressions`.
    threshold, penalty:
        From :class:`recsys.config.RecsysConfig`.

    Returns
    -------
    numpy.ndarray or None
        float64 penalties aligned with ``candidates``, or ``None`` when nothing is fatigued.
    """
    if penalty <= 0.0:
        return None
    tired: dict[int, float] = {}
    for item_id, n in counts.items():
        if n >= threshold:
            i = positions.get(item_id)
            if i is not None:
                tired[i] = penalty * (n - threshold + 1)
    if not tired:
        return None
    idx = np.fromiter(tired.keys(), dtype=np.int64, count=len(tired))
    val = np.fromiter(tired.values(), dtype=np.float64, count=len(tired))
    order = np.argsort(idx)
    idx, val = idx[order], val[order]
    where = np.searchsorted(idx, candidates)
    where = np.minimum(where, idx.size - 1)
    return np.where(idx[where] == candidates, val[where], 0.0)
