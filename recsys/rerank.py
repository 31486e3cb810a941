"""Re-ranking of filtered candidates: business boosts and category diversity (SPEC §5).

Raw retrieval scores (inner products, blended scores, trending counts) have no common scale,
so re-ranking first maps each candidate list to ``[0, 1]`` (best = 1, worst = 0). Boosts,
impression-fatigue penalties and the diversity penalty are then all expressed in that unit:
a boost of 0.2 lifts an item by a fifth of the list's score range, whatever the model.

Diversity is greedy maximal marginal relevance with category similarity: the marginal value
of a candidate is ``score - lambda * (items already chosen from its top-level category)``.
Because the penalty depends only on the category, the greedy choice is the best head of a
per-category queue; each item's value when it would be picked is known in advance, so the
greedy selection is one sort of the candidates (see :func:`diversify`).
"""

from __future__ import annotations

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

    Notes
    -----
    The greedy step takes the best head of the per-group queues, valued
    ``score - lambda * (items already taken from its group)``. When an item is taken, the
    items taken before it from its group are exactly those ranked above it in the group, so
    its value is fixed in advance: ``score - lambda * (rank within its group)``. That value
    falls along each group's queue, so merging the queues greedily is one sort of all
    candidates by it (ties by score rank, as the greedy step breaks them). The whole
    selection is therefore a few array operations, with no loop over candidates or picks.
    """
    n = int(scores.shape[0])
    kk = min(k, n)
    order = np.argsort(-scores, kind="stable")
    if kk == 0 or (diversity_lambda <= 0.0 and cap is None):
        return order[:kk].astype(np.int64, copy=False)
    # Rank of each candidate inside its group: group the score ranks (stable, so each group
    # stays in score order) and count from each group's first rank.
    group_of_rank = np.asarray(groups)[order]
    by_group = np.argsort(group_of_rank, kind="stable")
    sorted_groups = group_of_rank[by_group]
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(sorted_groups[1:], sorted_groups[:-1], out=first[1:])
    seq = np.arange(n)
    start = np.maximum.accumulate(np.where(first, seq, 0))
    within = np.empty(n, dtype=np.int64)
    within[by_group] = seq - start
    ranked_scores = scores[order]
    # Same arithmetic as scoring each queue head one at a time, so ties resolve identically.
    value = ranked_scores - diversity_lambda * within if diversity_lambda > 0.0 else ranked_scores
    if cap is None:
        picked = np.argsort(-value, kind="stable")[:kk]
        return order[picked].astype(np.int64, copy=False)
    # A group's items past the cap wait until every group is capped or empty; then they fill
    # the list in score order.
    open_ranks = np.flatnonzero(within < cap)
    picked = open_ranks[np.argsort(-value[open_ranks], kind="stable")][:kk]
    if picked.size < kk:
        overflow = np.flatnonzero(within >= cap)[: kk - picked.size]
        picked = np.concatenate([picked, overflow])
    return order[picked].astype(np.int64, copy=False)
