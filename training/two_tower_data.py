"""Training examples of the two-tower model: (history before a visit, what was bought next).

One example per purchase visit of a shopper who had a history before it: the history is the
shopper's distinct recent items, newest first (the same input serving gives the user tower);
the targets are every item bought in that visit and, with a target window, in the visits of
the following days, each flagged novel when the shopper never touched it before the visit.
Learning all targets teaches buy-again, the novel ones discovery; the loss weighs both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TwoTowerData:
    """Multi-target training examples.

    ``histories[r]`` is the padded recent-item list (newest first) before visit ``r`` of user
    ``row_user[r]``; its targets are ``target_item[target_ptr[r]:target_ptr[r + 1]]`` with
    ``target_novel`` flags. ``final_histories[u]`` is user ``u``'s recent items after all
    their events. Rows flagged ``reconstruction`` pair a shopper's final history with
    everything they bought in the window (as a denoising autoencoder learns: with history
    dropout, the dropped items are the ones to find).
    """

    histories: np.ndarray
    row_user: np.ndarray
    target_ptr: np.ndarray
    target_item: np.ndarray
    target_novel: np.ndarray
    final_histories: np.ndarray
    reconstruction: np.ndarray

    @property
    def n_rows(self) -> int:
        """Number of examples (visits with a history and a target)."""
        return len(self.histories)

    def targets_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat ``(position in rows, item, novel)`` of the targets of ``rows``."""
        lo, hi = self.target_ptr[rows], self.target_ptr[rows + 1]
        lens = hi - lo
        pos = np.repeat(np.arange(len(rows)), lens)
        offsets = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        flat = np.repeat(lo, lens) + offsets
        return pos, self.target_item[flat], self.target_novel[flat]


def _visits(
    user: np.ndarray, item: np.ndarray, timestamp: np.ndarray, session: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Event order (by user, visit start, time) and visit bounds in that order."""
    order = np.lexsort((timestamp, session, user))
    u, s = user[order], session[order]
    bounds = np.flatnonzero(np.r_[True, (u[1:] != u[:-1]) | (s[1:] != s[:-1]), True])
    starts, ends = bounds[:-1], bounds[1:]
    first_ts = timestamp[order][starts]
    visit_order = np.lexsort((first_ts, u[starts]))
    return order, starts[visit_order], ends[visit_order], first_ts[visit_order]


def _targets_per_visit(
    item: np.ndarray, is_target: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> list[np.ndarray]:
    """Per visit (events ``starts[k]:ends[k]``), its distinct target items, sorted.

    One sort of (visit, item) pairs for all visits: a ``numpy.unique`` per visit cost a
    second per hundred thousand visits.
    """
    lens = ends - starts
    n = len(starts)
    if n == 0:
        return []
    offsets = np.r_[0, np.cumsum(lens)[:-1]]
    events = np.repeat(starts - offsets, lens) + np.arange(int(lens.sum()))
    visit = np.repeat(np.arange(n), lens)
    keep = is_target[events]
    visit, it = visit[keep], item[events][keep]
    order = np.lexsort((it, visit))
    visit, it = visit[order], it[order]
    first = np.r_[True, (visit[1:] != visit[:-1]) | (it[1:] != it[:-1])]
    visit, it = visit[first], it[first]
    return np.split(it, np.searchsorted(visit, np.arange(1, n)))


def build_examples(
    user: np.ndarray,
    item: np.ndarray,
    timestamp: np.ndarray,
    session: np.ndarray,
    is_target: np.ndarray,
    n_users: int,
    n_items: int,
    history_length: int,
    novel_targets_only: bool = False,
    target_window: float = 0.0,
    reconstruction: bool = True,
) -> TwoTowerData:
    """Turn index-mapped events into visit examples.

    Parameters
    ----------
    user, item:
        User and item index of each event.
    timestamp:
        int64 event times in nanoseconds (``target_window`` is measured on them).
    session:
        Integer visit key of each event (unique per user visit).
    is_target:
        Which events are targets (purchases); every event feeds later histories.
    n_users, n_items:
        Sizes; ``n_items`` is the padding index.
    history_length:
        Recent distinct items kept per history.
    novel_targets_only:
        Keep only targets the user never interacted with before the visit.
    target_window:
        Days after a visit's start whose later purchases are targets too (0: the visit only).
    reconstruction:
        Add one row per shopper: final history -> every item bought in the window.

    Returns
    -------
    TwoTowerData
    """
    order, starts, ends, first_ts = _visits(user, item, timestamp, session)
    u, it, tg = user[order], item[order], is_target[order]
    window_ns = int(target_window * 86400 * 1e9)
    pad = n_items
    hist_rows: list[np.ndarray] = []
    row_user: list[int] = []
    t_items: list[np.ndarray] = []
    t_novel: list[np.ndarray] = []
    final = np.full((n_users, history_length), pad, dtype=np.int64)
    n_visits = len(starts)
    visit_user = u[starts] if n_visits else np.zeros(0, dtype=np.int64)
    bought = _targets_per_visit(it, tg, starts, ends)
    recent: list[int] = []
    seen: set[int] = set()
    recon: list[tuple[int, np.ndarray]] = []
    for k in range(n_visits):
        uu = int(visit_user[k])
        if k == 0 or visit_user[k - 1] != uu:
            recent, seen = [], set()
        targets = bought[k]
        j = k + 1
        while j < n_visits and visit_user[j] == uu and first_ts[j] - first_ts[k] < window_ns:
            j += 1
        if j > k + 1:
            targets = np.unique(np.concatenate(bought[k:j]))
        novel = np.array([int(x) not in seen for x in targets], dtype=bool)
        if novel_targets_only:
            targets, novel = targets[novel], novel[novel]
        if recent and targets.size:
            row = np.full(history_length, pad, dtype=np.int64)
            row[: len(recent)] = recent
            hist_rows.append(row)
            row_user.append(uu)
            t_items.append(targets.astype(np.int64))
            t_novel.append(novel)
        newest = [int(x) for x in it[starts[k] : ends[k]][::-1]]
        recent = list(dict.fromkeys(newest + recent))[:history_length]
        seen.update(newest)
        if k + 1 == n_visits or visit_user[k + 1] != uu:
            final[uu, : len(recent)] = recent
            first = k
            while first > 0 and visit_user[first - 1] == uu:
                first -= 1
            everything = np.unique(np.concatenate(bought[first : k + 1]))
            if reconstruction and everything.size:
                recon.append((uu, everything))
    for uu, everything in recon:
        hist_rows.append(final[uu])
        row_user.append(uu)
        t_items.append(everything.astype(np.int64))
        t_novel.append(np.zeros(everything.size, dtype=bool))
    n_visit_rows = len(hist_rows) - len(recon)
    lens = np.array([len(t) for t in t_items], dtype=np.int64)
    return TwoTowerData(
        histories=np.stack(hist_rows)
        if hist_rows
        else np.zeros((0, history_length), dtype=np.int64),
        row_user=np.asarray(row_user, dtype=np.int64),
        target_ptr=np.r_[0, np.cumsum(lens)].astype(np.int64),
        target_item=np.concatenate(t_items) if t_items else np.zeros(0, dtype=np.int64),
        target_novel=np.concatenate(t_novel) if t_novel else np.zeros(0, dtype=bool),
        final_histories=final,
        reconstruction=np.arange(len(hist_rows)) >= n_visit_rows,
    )
