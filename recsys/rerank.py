"""Re-ranking of filtered candidates: business boosts and category diversity (SPEC §5).

Raw retrieval scores (inner products, blended scores, trending counts) have no common scale,
so re-ranking first maps each candidate list to ``[0, 1]`` (best = 1, worst = 0). Boosts,
impression-fatigue penalties and the diversity penalty are then all expressed in that unit:
a boost of 0.2 lifts an item by a fifth of the list's score range, whatever the model.

Diversity is greedy maximal marginal relevance with category similarity: the marginal value
of a candidate is ``score - lambda * (items already chosen from its top-level category)``.
Because the penalty depends only on the category, the greedy choice is the best head of a
per-category queue, which a heap finds in ``O(k log C)`` instead of ``O(k n)``.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

import numpy as np

from recsys.filters import CatalogArrays, is_under


def normalise(scores: np.ndarray) -> np.ndarray:
    """Min-max scale scores to ``[0, 1]`` (all equal -> all 1).

    Parameters
    ----------
    scores:
        One candidate list's scores.

    Returns
    -------
    numpy.ndarray
        float64 array of the same length.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return s
    lo, hi = float(s.min()), float(s.max())
    if hi - lo <= 0.0:
        return np.ones_like(s)
    return (s - lo) / (hi - lo)


def boost_array(
    catalog: CatalogArrays,
    item_boosts: Mapping[str, float],
    category_boosts: Mapping[str, float],
) -> np.ndarray | None:
    """Per-item additive boost from business rules, computed once per bundle.

    Parameters
    ----------
    catalog:
        The bundle's item arrays.
    item_boosts:
        item_id -> boost; ids absent from the catalog are ignored.
    category_boosts:
        Category path prefix -> boost; an item under several boosted prefixes gets their sum.

    Returns
    -------
    numpy.ndarray or None
        ``(n_items,)`` float64 boosts, or ``None`` when no rule touches any item (so the
        request path can skip the step).
    """
    if not item_boosts and not category_boosts:
        return None
    out = np.zeros(catalog.n_items, dtype=np.float64)
    for prefix, boost in category_boosts.items():
        per_code = np.fromiter(
            (is_under(c, prefix) for c in catalog.categories),
            dtype=bool,
            count=len(catalog.categories),
        )
        out[per_code[catalog.category_codes]] += boost
    if item_boosts:
        position = {item_id: i for i, item_id in enumerate(catalog.item_ids.tolist())}
        for item_id, boost in item_boosts.items():
            i = position.get(item_id)
            if i is not None:
                out[i] += boost
    return out if np.any(out != 0.0) else None


def diversify(
    scores: np.ndarray,
    groups: np.ndarray,
    k: int,
    diversity_lambda: float,
    cap: int | None = None,
) -> np.ndarray:
    """Pick ``k`` positions greedily, trading score against repeating a category.

    Parameters
    ----------
    scores:
        Candidate scores on a common scale (normally :func:`normalise` plus adjustments).
    groups:
        Category code of each candidate (same length).
    k:
        Number of positions to choose.
    diversity_lambda:
        Penalty per item already chosen from the same group; 0 keeps the score order.
    cap:
        At most this many per group while other groups still have candidates; once every
        group is capped or empty, the rest are filled in score order.

    Returns
    -------
    numpy.ndarray
        int64 positions into ``scores``, in chosen order, length ``min(k, len(scores))``.
    """
    n = int(scores.shape[0])
    kk = min(k, n)
    order = np.argsort(-scores, kind="stable")
    if diversity_lambda <= 0.0 and cap is None:
        return order[:kk].astype(np.int64)
    # Plain Python lists: this loop touches each candidate once, and numpy scalar access
    # would cost more than the arithmetic.
    order_l = order.tolist()
    score_l = scores.tolist()
    group_l = groups.tolist()
    # Per-group queues of (rank in score order, position), built from the one stable sort.
    queues: dict[int, list[tuple[int, int]]] = {}
    for rank, pos in enumerate(order_l):
        queues.setdefault(group_l[pos], []).append((rank, pos))
    heads = dict.fromkeys(queues, 0)
    counts = dict.fromkeys(queues, 0)
    # Ties broken by rank in the score order, so results are deterministic.
    heap = [(-score_l[q[0][1]], q[0][0], g) for g, q in queues.items()]
    heapq.heapify(heap)
    chosen: list[int] = []
    overflow: list[tuple[int, int]] = []
    while heap and len(chosen) < kk:
        _, _, g = heapq.heappop(heap)
        q = queues[g]
        chosen.append(q[heads[g]][1])
        heads[g] += 1
        counts[g] += 1
        if heads[g] >= len(q):
            continue
        if cap is not None and counts[g] >= cap:
            overflow.extend(q[heads[g] :])
            continue
        rank, nxt = q[heads[g]]
        heapq.heappush(heap, (-(score_l[nxt] - diversity_lambda * counts[g]), rank, g))
    if len(chosen) < kk:
        overflow.sort()
        chosen.extend(pos for _, pos in overflow[: kk - len(chosen)])
    return np.asarray(chosen, dtype=np.int64)
