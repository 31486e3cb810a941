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
from typing import TypeAlias

import numpy as np
import scipy.sparse as sp

from recsys.hybrid import scaled_rows
from training.evaluation import EvalSplit
from training.ranking import best_unordered, map_blocks, one_thread, rows_per_block

SourceFn = Callable[[np.ndarray], np.ndarray]
# A source is a scorer of a batch of users, one vector that scores every user alike (trend),
# or a sparse (users x items) matrix (buy-again: non-zero on the items a user bought only).
Source: TypeAlias = SourceFn | np.ndarray | sp.csr_matrix


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
        # argpartition, not torch.topk: on a few hundred candidates and k 20 it is faster.
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
    batch: int | None = None,
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
        inside ``depth``). Sparse matrices (buy-again variants) add the best ``depth`` of the
        items any of them scores, read without densifying the catalog.
    depth:
        Best items kept per source and user.
    k:
        List length of the recall computed later (the denominator ``min(|truth|, k)``).
    batch:
        Users scored at a time (bounds the memory of the dense score rows; default
        :func:`training.ranking.rows_per_block`).

    Returns
    -------
    CachedSplit
    """
    with one_thread():
        return _cache_split(split, rows, sources, depth, k, batch)


def _cache_split(
    split: EvalSplit,
    rows: np.ndarray,
    sources: Mapping[str, Source],
    depth: int,
    k: int,
    batch: int | None,
) -> CachedSplit:
    names = list(sources)
    n_items = split.truth.shape[1]
    d = min(depth, n_items)
    batch = batch or rows_per_block(n_items)
    n_truth = np.diff(split.truth.indptr)
    shared: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    sparse = {n: sp.csr_matrix(m) for n, m in sources.items() if sp.issparse(m)}
    for name in names:
        vec = sources[name]
        if isinstance(vec, np.ndarray):
            v = scaled_rows(np.asarray(vec, dtype=np.float32))
            masked = np.where(split.candidates, v, -np.inf)
            shared[name] = (v, np.argpartition(-masked, d - 1)[:d])

    def block(lo: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        pos = rows[lo : lo + batch]
        users = split.users[pos]
        exclude = np.broadcast_to(~split.candidates, (len(users), n_items)).copy()
        if split.mode == "novel":
            exclude |= split.bought[users].toarray() > 0
        full: dict[str, np.ndarray] = {}
        tops = []
        pads = []
        part = {n: _scaled_rows(m[users]) for n, m in sparse.items()}
        if part:
            support = sum((abs(m) for m in part.values()), sp.csr_matrix((len(users), n_items)))
            top, pad = _sparse_top(sp.csr_matrix(support), d)
            tops.append(top)
            pads.append(pad)
        for name in names:
            if name in sparse:
                continue
            if name in shared:
                v, top = shared[name]
                full[name] = np.broadcast_to(v, (len(users), n_items))
                tops.append(np.broadcast_to(top, (len(users), d)))
                pads.append(np.zeros((len(users), d), dtype=bool))
                continue
            fn = sources[name]
            if not callable(fn):
                raise TypeError(f"source {name!r}: not a scorer, vector or sparse matrix")
            s = np.asarray(fn(users), dtype=np.float32)
            s = scaled_rows(s)
            full[name] = s
            masked = np.where(exclude, -np.inf, s)
            tops.append(best_unordered(masked, d))
            pads.append(np.zeros((len(users), d), dtype=bool))
        cand_raw = np.concatenate(tops, axis=1)
        pad_raw = np.concatenate(pads, axis=1)
        # Sort by item, real entries before padding of the same item; later copies are dups.
        order = np.argsort(cand_raw.astype(np.int64) * 2 + pad_raw, axis=1, kind="stable")
        cand = np.take_along_axis(cand_raw, order, axis=1)
        dup = np.take_along_axis(pad_raw, order, axis=1)
        dup[:, 1:] |= cand[:, 1:] == cand[:, :-1]
        bad = dup | np.take_along_axis(exclude, cand, axis=1)
        truth = split.truth[pos]
        # One membership test of (row, item) keys instead of one per shopper.
        t_rows = np.repeat(np.arange(len(pos), dtype=np.int64), np.diff(truth.indptr))
        t_keys = t_rows * n_items + truth.indices
        hit = np.isin(np.arange(len(pos), dtype=np.int64)[:, None] * n_items + cand, t_keys)
        hit &= ~bad
        scored = {
            name: _sparse_lookup(part[name], cand)
            if name in sparse
            else np.take_along_axis(full[name], cand, axis=1)
            for name in names
        }
        return np.where(bad, -1, cand), hit, scored

    blocks = map_blocks(block, range(0, len(rows), batch))
    return CachedSplit(
        items=np.concatenate([b[0] for b in blocks]),
        scores={n: np.concatenate([b[2][n] for b in blocks]) for n in names},
        hits=np.concatenate([b[1] for b in blocks]),
        denom=np.minimum(n_truth[rows], k).astype(np.float64),
    )


def _scaled_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its largest absolute value (as ``blend_scores`` scales)."""
    m = sp.csr_matrix(m, dtype=np.float32, copy=True)
    m.sort_indices()
    lens = np.diff(m.indptr)
    if m.nnz:
        top = np.zeros(m.shape[0], dtype=np.float32)
        nonempty = lens > 0
        top[nonempty] = np.maximum.reduceat(np.abs(m.data), m.indptr[:-1][nonempty])
        scale = np.repeat(top, lens)
        m.data = np.divide(m.data, scale, out=np.zeros_like(m.data), where=scale > 0)
    return m


def _sparse_top(m: sp.csr_matrix, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the columns of the ``d`` largest stored values and a padding mask."""
    cand = np.zeros((m.shape[0], d), dtype=np.int64)
    pad = np.ones((m.shape[0], d), dtype=bool)
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        idx, val = m.indices[lo:hi], m.data[lo:hi]
        if hi - lo > d:
            idx = idx[np.argpartition(-val, d - 1)[:d]]
        cand[r, : len(idx)] = idx
        pad[r, : len(idx)] = False
    return cand, pad


def _sparse_lookup(m: sp.csr_matrix, cand: np.ndarray) -> np.ndarray:
    """``m[r, cand[r, j]]`` for every row and column position (0 where not stored)."""
    n = m.shape[1]
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    keys = rows * n + m.indices.astype(np.int64)  # sorted: rows ascending, indices sorted
    want = np.arange(cand.shape[0], dtype=np.int64)[:, None] * n + cand
    if keys.size == 0:
        return np.zeros(cand.shape, dtype=np.float32)
    at = np.clip(np.searchsorted(keys, want), 0, keys.size - 1)
    return np.where(keys[at] == want, m.data[at], 0.0).astype(np.float32)
