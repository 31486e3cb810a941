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
    if kk == 0 or (diversity_lambda <= 0.0 and cap is None):
        return order[:kk].astype(np.int64)
    # Per-group queues without a Python loop over candidates: ranks (positions in the score
    # order) grouped by category, each group still in score order thanks to stable sorts.
    group_of_rank = np.asarray(groups)[order]
    ranks = np.argsort(group_of_rank, kind="stable")
    sorted_groups = group_of_rank[ranks]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    heads = starts.tolist()
    ends = [*heads[1:], n]
    rank_l = ranks.tolist()
    order_l = order.tolist()
    score_l = scores.tolist()
    counts = [0] * len(heads)
    # Ties broken by rank in the score order, so results are deterministic.
    heap = [(-score_l[order_l[rank_l[h]]], rank_l[h], gi) for gi, h in enumerate(heads)]
    heapq.heapify(heap)
    chosen: list[int] = []
    overflow: list[int] = []
    while heap and len(chosen) < kk:
        _, rank, gi = heapq.heappop(heap)
        chosen.append(order_l[rank])
        heads[gi] += 1
        counts[gi] += 1
        if heads[gi] >= ends[gi]:
            continue
        if cap is not None and counts[gi] >= cap:
            overflow.extend(rank_l[heads[gi] : ends[gi]])
            continue
        nxt = rank_l[heads[gi]]
        penalty = diversity_lambda * counts[gi]
        heapq.heappush(heap, (-(score_l[order_l[nxt]] - penalty), nxt, gi))
    if len(chosen) < kk:
        overflow.sort()
        chosen.extend(order_l[r] for r in overflow[: kk - len(chosen)])
    return np.asarray(chosen, dtype=np.int64)
