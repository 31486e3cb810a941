"""Cached candidate lists that make a blend-weight search cost almost nothing per grid point.

A blend is a weighted sum of per-source scores, each divided by its largest absolute value over
the catalog (:func:`recsys.hybrid.blend_scores`). Scoring the full catalog for every grid point
repeats the same matrix products many times. Instead, every source scores the catalog once per
user; the row scale and the source's best ``depth`` items are kept. The union of those items is
the user's candidate set, and each grid point is one weighted sum over that small set plus a
top-20. An item in no source's top ``depth`` cannot reach a blended top-20 unless ``depth`` is
close to 20 (its blended score is below the twenty items each source ranks above it), so the
recall measured equals the full-catalog recall for ``depth`` of a few hundred.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from training.evaluation import EvalSplit

SourceFn = Callable[[np.ndarray], np.ndarray]
# A source is a scorer of a batch of users, or one vector that scores every user alike (trend).
Source = SourceFn | np.ndarray


@dataclass
class CachedSplit:
    """Candidates of a split's users and each source's scaled score on them.

    ``items[u]`` are candidate item indices (``-1`` pads duplicates and filtered items),
    ``scores[name][u]`` the source's score divided by its catalog-wide row scale,
    ``hits[u]`` whether each candidate is in the user's truth, ``denom[u]`` = ``min(|truth|, k)``.
    """

    items: np.ndarray
    scores: dict[str, np.ndarray]
    hits: np.ndarray
    denom: np.ndarray

    def recall(self, weights: Mapping[str, float], k: int = 20) -> float:
        """Mean Recall@k of the blend ``sum_s weights[s] * scores[s]`` over the candidates."""
        n_users, n_cands = self.items.shape
        total = np.zeros((n_users, n_cands), dtype=np.float32)
        for name, w in weights.items():
            if w:
                total += np.float32(w) * self.scores[name]
        total[self.items < 0] = -np.inf
        kk = min(k, n_cands)
        top = np.argpartition(-total, kk - 1, axis=1)[:, :kk]
        got = np.take_along_axis(self.hits, top, axis=1)
        # Padding slots can be drawn when a user has fewer than k candidates; they never hit.
        return float(np.mean(got.sum(axis=1) / self.denom))


def sample_users(split: EvalSplit, max_users: int, seed: int) -> np.ndarray:
    """Row positions of at most ``max_users`` evaluated users (seeded, sorted)."""
    n = split.n_users
    if max_users <= 0 or n <= max_users:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_users, replace=False))


def cache_split(
    split: EvalSplit,
    rows: np.ndarray,
    sources: Mapping[str, Source],
    depth: int,
    k: int = 20,
    batch: int = 512,
) -> CachedSplit:
    """Score ``split.users[rows]`` once per source and keep the candidates of the blend.

    Parameters
    ----------
    split:
        Validation truth and filters (``novel`` mode filters bought items).
    rows:
        Positions in ``split.users`` to evaluate (see :func:`sample_users`).
    sources:
        Source name -> scorer of a batch of user indices (dense ``(batch, n_items)``), or an
        ``(n_items,)`` vector shared by every user. A shared vector's best ``depth``
        recommendable items are found once; a user's own bought items among them are then
        dropped in ``novel`` mode rather than replaced (the search is over top-20 lists, far
        inside ``depth``).
    depth:
        Best items kept per source and user.
    k:
        List length of the recall computed later (the denominator ``min(|truth|, k)``).
    batch:
        Users scored at a time (bounds the memory of the dense score rows).

    Returns
    -------
    CachedSplit
    """
    names = list(sources)
    n_items = split.truth.shape[1]
    d = min(depth, n_items)
    items_out, hits_out = [], []
    scores_out: dict[str, list[np.ndarray]] = {n: [] for n in names}
    n_truth = np.diff(split.truth.indptr)
    shared: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in names:
        vec = sources[name]
        if isinstance(vec, np.ndarray):
            v = np.asarray(vec, dtype=np.float32)
            scale = float(np.max(np.abs(v))) if v.size else 0.0
            v = v / scale if scale > 0 else np.zeros_like(v)
            masked = np.where(split.candidates, v, -np.inf)
            shared[name] = (v, np.argpartition(-masked, d - 1)[:d])
    for lo in range(0, len(rows), batch):
        pos = rows[lo : lo + batch]
        users = split.users[pos]
        exclude = np.broadcast_to(~split.candidates, (len(users), n_items)).copy()
        if split.mode == "novel":
            exclude |= split.bought[users].toarray() > 0
        full: dict[str, np.ndarray] = {}
        tops = []
        for name in names:
            if name in shared:
                v, top = shared[name]
                full[name] = np.broadcast_to(v, (len(users), n_items))
                tops.append(np.broadcast_to(top, (len(users), d)))
                continue
            fn = sources[name]
            assert callable(fn)
            s = np.asarray(fn(users), dtype=np.float32)
            scale = np.max(np.abs(s), axis=1, keepdims=True)
            s = np.divide(s, scale, out=np.zeros_like(s), where=scale > 0)
            full[name] = s
            masked = np.where(exclude, -np.inf, s)
            tops.append(np.argpartition(-masked, d - 1, axis=1)[:, :d])
        cand = np.sort(np.concatenate(tops, axis=1), axis=1)
        dup = np.zeros(cand.shape, dtype=bool)
        dup[:, 1:] = cand[:, 1:] == cand[:, :-1]
        bad = dup | np.take_along_axis(exclude, cand, axis=1)
        for name in names:
            scores_out[name].append(np.take_along_axis(full[name], cand, axis=1))
        truth = split.truth[pos]
        hit = np.zeros(cand.shape, dtype=bool)
        for r in range(len(pos)):
            t = truth.indices[truth.indptr[r] : truth.indptr[r + 1]]
            hit[r] = np.isin(cand[r], t)
        hit &= ~bad
        items_out.append(np.where(bad, -1, cand))
        hits_out.append(hit)
    return CachedSplit(
        items=np.concatenate(items_out),
        scores={n: np.concatenate(v) for n, v in scores_out.items()},
        hits=np.concatenate(hits_out),
        denom=np.minimum(n_truth[rows], k).astype(np.float64),
    )
