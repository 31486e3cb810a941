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

from recsys.hybrid import top_k

Mode = Literal["all", "novel"]
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


def ranked_lists(scorer: Scorer, split: EvalSplit, k: int, batch: int = 1024) -> np.ndarray:
    """Top-``k`` item lists for every evaluated user (filters applied)."""
    out = []
    for lo in range(0, split.n_users, batch):
        users = split.users[lo : lo + batch]
        scores = np.asarray(scorer(users), dtype=np.float32)
        exclude = np.broadcast_to(~split.candidates, scores.shape).copy()
        if split.mode == "novel":
            exclude |= split.bought[users].toarray() > 0
        out.append(top_k(scores, k, exclude))
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


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
    # hits[u, r] = whether the item at rank r is in user u's truth: one membership test of
    # (row, item) keys instead of a sparse lookup per rank.
    n_items = truth.shape[1]
    rows = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    truth_keys = rows * n_items + truth.indices.astype(np.int64)
    list_keys = np.arange(lists.shape[0], dtype=np.int64)[:, None] * n_items + lists
    hits = np.isin(list_keys, truth_keys[truth.data > 0])
    n_candidates = max(1, int(split.candidates.sum()))
    pct = popularity_percentile(split)
    sessions = np.asarray(split.bought[split.users].sum(axis=1)).ravel()
    segments = {name: (sessions >= lo) & (sessions <= hi) for name, (lo, hi) in SEGMENTS.items()}
    for k in k_values:
        h = hits[:, :k]
        denom = np.minimum(n_truth, k)
        disc = 1.0 / np.log2(np.arange(2, h.shape[1] + 2))
        ideal = np.array([disc[:d].sum() for d in range(k + 1)])[denom]
        prec_at = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
        out[f"recall@{k}"] = float(np.mean(h.sum(axis=1) / denom))
        out[f"ndcg@{k}"] = float(np.mean((h * disc).sum(axis=1) / ideal))
        out[f"hit_rate@{k}"] = float(np.mean(h.any(axis=1)))
        out[f"map@{k}"] = float(np.mean((prec_at * h).sum(axis=1) / denom))
        out[f"coverage@{k}"] = float(len(np.unique(lists[:, :k])) / n_candidates)
        # Mean popularity percentile of recommended items (0.5 = a catalog-typical item).
        out[f"pop_percentile@{k}"] = float(np.mean(pct[lists[:, :k]]))
        recall = h.sum(axis=1) / denom
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
    scorer: Scorer, splits: dict[str, EvalSplit], k_values: list[int], batch: int = 1024
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
        Users scored at a time.

    Returns
    -------
    dict
        Mode -> metrics, equal to ``evaluate(scorer, splits[mode], k_values)``.
    """
    k = max(k_values)
    users = np.unique(np.concatenate([s.users for s in splits.values()]))
    lists: dict[str, list[np.ndarray]] = {mode: [] for mode in splits}
    for lo in range(0, len(users), batch):
        part = users[lo : lo + batch]
        scores = np.asarray(scorer(part), dtype=np.float32)
        for mode, split in splits.items():
            rows = np.flatnonzero(np.isin(part, split.users))
            if rows.size == 0:
                continue
            mine = part[rows]
            exclude = np.broadcast_to(~split.candidates, (rows.size, scores.shape[1])).copy()
            if split.mode == "novel":
                exclude |= split.bought[mine].toarray() > 0
            lists[mode].append(top_k(scores[rows], k, exclude))
    return {
        mode: metrics_from_lists(
            np.concatenate(lists[mode]) if lists[mode] else np.zeros((0, k), dtype=np.int64),
            split,
            k_values,
        )
        for mode, split in splits.items()
    }
