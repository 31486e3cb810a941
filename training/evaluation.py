"""Temporal-split evaluation: Recall, NDCG, HitRate, MAP and coverage at several K.

The protocol is the one of the reference scripts: purchases only; shoppers and items must be
known from training; the truth of a shopper is the set of known items they bought after the
cut; Recall@K = hits / min(|truth|, K); NDCG uses binary gains. In ``novel`` mode the items a
shopper bought before the cut are removed from the truth and filtered from the lists, which
measures discovery separately from buy-again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.ranking import map_blocks, one_thread, rows_per_block, top_k_rows

Mode = Literal["all", "novel"]
# Maps user indices to a dense (users, items) score block. The block must be a new array:
# the evaluation masks it in place rather than copying it.
Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvalSplit:
    """Ground truth of one temporal split.

    ``truth`` is a CSR matrix (eval user rows x items) of items bought after the cut;
    ``users`` maps its rows to user indices; ``bought`` is the (n_users x n_items) CSR of
    purchases before the cut; ``candidates`` marks items that may be recommended (known items).
    """

    users: np.ndarray
    truth: sp.csr_matrix
    bought: sp.csr_matrix
    candidates: np.ndarray
    mode: Mode

    @property
    def n_users(self) -> int:
        """Number of evaluated shoppers."""
        return len(self.users)


def make_split(
    test_user: np.ndarray,
    test_item: np.ndarray,
    bought: sp.csr_matrix,
    candidates: np.ndarray,
    mode: Mode,
) -> EvalSplit:
    """Build the truth of a split from test purchases already mapped to known indices.

    Parameters
    ----------
    test_user, test_item:
        User and item index of each purchase after the cut (unknown ones already dropped).
    bought:
        Purchases before the cut, ``(n_users, n_items)``.
    candidates:
        Boolean mask of recommendable (known) items.
    mode:
        ``"all"`` or ``"novel"``.

    Returns
    -------
    EvalSplit
    """
    n_items = bought.shape[1]
    pairs = pd.DataFrame({"u": test_user, "i": test_item}).drop_duplicates()
    if mode == "novel" and len(pairs):
        b = bought.tocsr()
        prior = np.asarray(b[pairs["u"].to_numpy(), pairs["i"].to_numpy()]).ravel() > 0
        pairs = pairs[~prior]
    users = np.unique(pairs["u"].to_numpy()).astype(np.int64)
    rows = np.searchsorted(users, pairs["u"].to_numpy())
    truth = sp.csr_matrix(
        (np.ones(len(pairs), dtype=np.float32), (rows, pairs["i"].to_numpy())),
        shape=(len(users), n_items),
    )
    return EvalSplit(
        users=users, truth=truth, bought=bought.tocsr(), candidates=candidates, mode=mode
    )


def ranked_lists(scorer: Scorer, split: EvalSplit, k: int, batch: int | None = None) -> np.ndarray:
    """Top-``k`` item lists for every evaluated user (filters applied)."""
    batch = batch or rows_per_block(split.truth.shape[1])
    out = []
    with one_thread():
        for lo in range(0, split.n_users, batch):
            users = split.users[lo : lo + batch]
            out.append(split_lists(np.asarray(scorer(users), dtype=np.float32), users, split, k))
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def split_lists(scores: np.ndarray, users: np.ndarray, split: EvalSplit, k: int) -> np.ndarray:
    """Top-``k`` of an owned score block of ``users`` with the split's filters."""
    drop = split.bought[users] if split.mode == "novel" else None
    return top_k_rows(scores, k, split.candidates, drop)


def list_hits(lists: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """``hits[u, r]``: whether the item at rank ``r`` of row ``u`` is in row ``u``'s truth.

    One membership test of (row, item) keys instead of a sparse lookup per rank.
    """
    n_items = truth.shape[1]
    rows = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    truth_keys = rows * n_items + truth.indices.astype(np.int64)
    list_keys = np.arange(lists.shape[0], dtype=np.int64)[:, None] * n_items + lists
    return np.isin(list_keys, truth_keys[truth.data > 0])


# Shopper segments by purchase sessions before the cut (inclusive bounds).
SEGMENTS = {"new": (0, 1), "occasional": (2, 4), "frequent": (5, np.iinfo(np.int64).max)}


def popularity_percentile(split: EvalSplit) -> np.ndarray:
    """Per item, the share of recommendable items bought by fewer shoppers before the cut."""
    pop = np.asarray((split.bought > 0).sum(axis=0)).ravel().astype(np.float64)
    cand = pop[split.candidates]
    if cand.size == 0:
        return np.zeros_like(pop)
    ranks = np.searchsorted(np.sort(cand), pop, side="left")
    return ranks / cand.size


def metrics_from_lists(
    lists: np.ndarray, split: EvalSplit, k_values: list[int]
) -> dict[str, float]:
    """Recall, NDCG, HitRate, MAP, coverage and popularity at each K from precomputed lists.

    Also Recall@K per shopper segment (``recall@20:new`` etc., :data:`SEGMENTS`) and the
    number of shoppers in each (``users:new``).
    """
    out: dict[str, float] = {}
    if split.n_users == 0:
        return out
    truth = split.truth
    n_truth = np.diff(truth.indptr)
    hits = list_hits(lists, truth)
    n_candidates = max(1, int(split.candidates.sum()))
    pct = popularity_percentile(split)
    sessions = np.asarray(split.bought[split.users].sum(axis=1)).ravel()
    segments = {name: (sessions >= lo) & (sessions <= hi) for name, (lo, hi) in SEGMENTS.items()}
    # Running sums over ranks, computed once for the longest list and read at every K.
    cum_hits = np.cumsum(hits, axis=1)
    full_disc = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2))
    cum_dcg = np.cumsum(hits * full_disc, axis=1)
    cum_ap = np.cumsum(hits * (cum_hits / np.arange(1, hits.shape[1] + 1)), axis=1)
    for k in k_values:
        h = hits[:, :k]
        last = h.shape[1] - 1
        denom = np.minimum(n_truth, k)
        disc = full_disc[: h.shape[1]]
        ideal = np.array([disc[:d].sum() for d in range(k + 1)])[denom]
        found = cum_hits[:, last] if last >= 0 else np.zeros(len(h))
        out[f"recall@{k}"] = float(np.mean(found / denom))
        out[f"ndcg@{k}"] = float(np.mean((cum_dcg[:, last] if last >= 0 else 0.0) / ideal))
        out[f"hit_rate@{k}"] = float(np.mean(found > 0))
        out[f"map@{k}"] = float(np.mean((cum_ap[:, last] if last >= 0 else 0.0) / denom))
        # Distinct items listed: a count per item instead of sorting every list.
        listed = np.bincount(lists[:, :k].ravel(), minlength=truth.shape[1])
        out[f"coverage@{k}"] = float(np.count_nonzero(listed) / n_candidates)
        # Mean popularity percentile of recommended items (0.5 = a catalog-typical item).
        out[f"pop_percentile@{k}"] = float(np.mean(pct[lists[:, :k]]))
        recall = found / denom
        for name, mask in segments.items():
            if mask.any():
                out[f"recall@{k}:{name}"] = float(np.mean(recall[mask]))
    for name, mask in segments.items():
        out[f"users:{name}"] = float(mask.sum())
    return out


def evaluate(scorer: Scorer, split: EvalSplit, k_values: list[int]) -> dict[str, float]:
    """Score every evaluated user and return the metrics at each K.

    Parameters
    ----------
    scorer:
        Maps an array of user indices to a dense ``(len(users), n_items)`` score array.
    split:
        Truth and filters from :func:`make_split`.
    k_values:
        List lengths, e.g. ``[10, 20, 50]``.

    Returns
    -------
    dict
        ``"recall@20"`` -> value, etc.
    """
    lists = ranked_lists(scorer, split, max(k_values))
    return metrics_from_lists(lists, split, k_values)


def evaluate_modes(
    scorer: Scorer,
    splits: dict[str, EvalSplit],
    k_values: list[int],
    batch: int | None = None,
    workers: int = 0,
) -> dict[str, dict[str, float]]:
    """:func:`evaluate` on several splits of the same users, scoring each user once.

    Parameters
    ----------
    scorer:
        As for :func:`evaluate`.
    splits:
        Mode -> split (e.g. ``all`` and ``novel`` of one cut).
    k_values:
        List lengths.
    batch:
        Users scored at a time (default: a block of about 16 MB of scores, see
        :func:`training.ranking.rows_per_block`).
    workers:
        Blocks scored side by side (0: the idle cores, :func:`training.ranking.idle_cores`).

    Returns
    -------
    dict
        Mode -> metrics, equal to ``evaluate(scorer, splits[mode], k_values)``.
    """
    k = max(k_values)
    users = np.unique(np.concatenate([s.users for s in splits.values()]))
    first = next(iter(splits.values()))
    batch = batch or rows_per_block(first.truth.shape[1])
    shared = _shares_one_ranking(splits)

    def block(lo: int) -> dict[str, np.ndarray]:
        part = users[lo : lo + batch]
        scores = np.asarray(scorer(part), dtype=np.float32)
        if shared:
            return _lists_of_both_modes(scores, part, splits, k)
        out = {}
        for mode, split in splits.items():
            rows = np.flatnonzero(np.isin(part, split.users))
            if rows.size:
                # Fancy indexing copies, so each mode masks its own block.
                out[mode] = split_lists(scores[rows], part[rows], split, k)
        return out

    with one_thread():
        blocks = map_blocks(block, range(0, len(users), batch), workers)
    lists = {mode: [b[mode] for b in blocks if mode in b] for mode in splits}
    return {
        mode: metrics_from_lists(
            np.concatenate(lists[mode]) if lists[mode] else np.zeros((0, k), dtype=np.int64),
            split,
            k_values,
        )
        for mode, split in splits.items()
    }


# A novel list is read off the "all" ranking when it is at most this many times longer than k.
SHARED_DEPTH = 3


def _shares_one_ranking(splits: dict[str, EvalSplit]) -> bool:
    """Whether the splits are one ``all`` and one ``novel`` split of the same catalog."""
    if sorted(splits) != ["all", "novel"]:
        return False
    a, n = splits["all"], splits["novel"]
    return (
        a.mode == "all"
        and n.mode == "novel"
        and a.bought is n.bought
        and np.array_equal(a.candidates, n.candidates)
    )


def _lists_of_both_modes(
    scores: np.ndarray, part: np.ndarray, splits: dict[str, EvalSplit], k: int
) -> dict[str, np.ndarray]:
    """``all`` and ``novel`` lists of a block of shoppers from one top-k selection.

    A shopper's novel list is their ``all`` ranking without the items they bought: the first
    ``k`` of it that they did not buy, which lie within the top ``k + bought`` of that ranking.
    Ranking that deeper list once costs less than ranking the catalog twice; a block whose
    heaviest buyer would need more than ``SHARED_DEPTH * k`` ranks its novel lists apart.
    """
    a, n = splits["all"], splits["novel"]
    bought = a.bought[part]
    bought.eliminate_zeros()
    depth = k + int(np.diff(bought.indptr).max(initial=0))
    out: dict[str, np.ndarray] = {}
    in_all = np.isin(part, a.users)
    in_novel = np.flatnonzero(np.isin(part, n.users))
    if depth > SHARED_DEPTH * k:
        out["all"] = split_lists(scores[in_all], part[in_all], a, k)
        if in_novel.size:
            out["novel"] = split_lists(scores[in_novel], part[in_novel], n, k)
        return out
    ranked = top_k_rows(scores, depth, a.candidates)
    out["all"] = ranked[in_all, :k]
    if in_novel.size:
        rows = ranked[in_novel]
        mine = bought[in_novel]
        n_items = scores.shape[1]
        keys = np.repeat(np.arange(mine.shape[0], dtype=np.int64), np.diff(mine.indptr))
        keys = keys * n_items + mine.indices
        was_bought = np.isin(np.arange(len(rows))[:, None] * n_items + rows, keys)
        # Stable: the items not bought keep their rank order.
        keep = np.argsort(was_bought, axis=1, kind="stable")[:, :k]
        out["novel"] = np.take_along_axis(rows, keep, axis=1)
    return out
