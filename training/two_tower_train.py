"""Training data and loop of the two-tower model, single process or under ``torchrun`` (DDP).

Examples are (history before a session, item bought in that session): the user tower learns to
embed a shopper from what they did before, exactly as it will be used online. Under
``torchrun`` every rank draws the same shuffled order (same seed) and takes its own slice of
each global batch, so the number of optimizer steps and the global batch match a single
process; gradients are averaged by DistributedDataParallel over gloo (CPU) or nccl (GPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import distributed as dist
from tqdm import tqdm

from training.two_tower_model import TwoTower, in_batch_logq_loss


class TwoTowerConfig(BaseModel):
    """Hyperparameters of the two-tower model (``two_tower`` section of the config file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    dim: int = Field(default=32, ge=2)
    history_length: int = Field(default=20, ge=1)
    epochs: int = Field(default=4, ge=1)
    batch_size: int = Field(default=1024, ge=2)
    learning_rate: float = Field(default=0.01, gt=0)
    temperature: float = Field(default=0.05, gt=0)
    price_bands: int = Field(default=5, ge=1)
    target_types: list[str] = Field(default_factory=lambda: ["purchase"])
    novel_targets_only: bool = True
    logq_correction: bool = True
    threads: int = Field(default=1, ge=0, description="torch threads; 0 = min(2, cpu count)")


@dataclass
class TwoTowerData:
    """Session-level training examples.

    ``histories[s]`` is the padded recent-item list (newest first) before session ``s``;
    example ``j`` pairs ``histories[example_session[j]]`` with target ``example_item[j]``.
    ``final_histories[u]`` is user ``u``'s recent items after all their events.
    """

    histories: np.ndarray
    example_session: np.ndarray
    example_item: np.ndarray
    final_histories: np.ndarray


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
) -> TwoTowerData:
    """Turn index-mapped events into session examples.

    Parameters
    ----------
    user, item:
        User and item index of each event.
    timestamp:
        int64 event times (any unit, only the order matters).
    session:
        Integer session key of each event (unique per user visit).
    is_target:
        Which events are targets (purchases); every event feeds later histories.
    n_users, n_items:
        Sizes; ``n_items`` is the padding index.
    history_length:
        Recent items kept per history.
    novel_targets_only:
        Keep only targets the user never interacted with before (trains discovery, since
        buy-again is handled by the hybrid's repeat part).

    Returns
    -------
    TwoTowerData
    """
    order = np.lexsort((timestamp, session, user))
    u, it, s, tg = user[order], item[order], session[order], is_target[order]
    # Sessions ordered by their first event within each user.
    bounds = np.flatnonzero(np.r_[True, (u[1:] != u[:-1]) | (s[1:] != s[:-1]), True])
    starts, ends = bounds[:-1], bounds[1:]
    first_ts = timestamp[order][starts]
    sess_order = np.lexsort((first_ts, u[starts]))
    pad = n_items
    histories: list[np.ndarray] = []
    ex_sess: list[np.ndarray] = []
    ex_item: list[np.ndarray] = []
    final = np.full((n_users, history_length), pad, dtype=np.int64)
    recent: list[int] = []
    seen: set[int] = set()
    current_user = -1
    for k in sess_order:
        a, b = starts[k], ends[k]
        uu = int(u[a])
        if uu != current_user:
            if current_user >= 0:
                final[current_user, : len(recent)] = recent
            recent, seen, current_user = [], set(), uu
        targets = np.unique(it[a:b][tg[a:b]])
        if novel_targets_only and targets.size:
            targets = targets[[int(x) not in seen for x in targets]]
        if recent and targets.size:
            row = np.full(history_length, pad, dtype=np.int64)
            row[: len(recent)] = recent
            ex_sess.append(np.full(targets.size, len(histories), dtype=np.int64))
            ex_item.append(targets.astype(np.int64))
            histories.append(row)
        newest = [int(x) for x in it[a:b][::-1]]
        merged = list(dict.fromkeys(newest + recent))
        recent = merged[:history_length]
        seen.update(newest)
    if current_user >= 0:
        final[current_user, : len(recent)] = recent
    return TwoTowerData(
        histories=np.stack(histories)
        if histories
        else np.zeros((0, history_length), dtype=np.int64),
        example_session=np.concatenate(ex_sess) if ex_sess else np.zeros(0, dtype=np.int64),
        example_item=np.concatenate(ex_item) if ex_item else np.zeros(0, dtype=np.int64),
        final_histories=final,
    )


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def init_distributed() -> bool:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return True


def set_threads(cfg: TwoTowerConfig) -> None:
    """Limit torch intra-op threads (shared machines, one thread per rank under DDP)."""
    n = cfg.threads or min(2, os.cpu_count() or 1)
    world, _ = _world()
    torch.set_num_threads(max(1, n // world))


def train_two_tower(
    data: TwoTowerData,
    n_items: int,
    item_category: np.ndarray,
    item_band: np.ndarray,
    cfg: TwoTowerConfig,
    seed: int,
    show_progress: bool = True,
) -> TwoTower:
    """Fit the two-tower model with in-batch negatives and log-Q correction.

    Parameters
    ----------
    data:
        Examples from :func:`build_examples`; must hold at least two examples.
    n_items, item_category, item_band:
        Catalog size and per-item features.
    cfg:
        Hyperparameters.
    seed:
        Seeds initialisation and shuffling (identical on every rank).
    show_progress:
        Show a progress bar (rank 0 only).

    Returns
    -------
    TwoTower
        The trained model in eval mode (the unwrapped module under DDP).
    """
    set_threads(cfg)
    world, rank = _world()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = TwoTower(n_items, item_category, item_band, cfg.dim)
    trained: torch.nn.Module = model
    if world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(model)
    counts = np.bincount(data.example_item, minlength=n_items).astype(np.float64) + 1.0
    log_q = torch.from_numpy(np.log(counts / counts.sum())).float()
    if not cfg.logq_correction:
        log_q = torch.zeros_like(log_q)
    hist = torch.from_numpy(data.histories)
    sess = torch.from_numpy(data.example_session)
    targets_all = torch.from_numpy(data.example_item)
    n = len(targets_all)
    global_bs = min(cfg.batch_size, n)
    local_bs = max(2, global_bs // world)
    n_batches = max(1, n // global_bs)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    model.train()
    bar = tqdm(
        total=cfg.epochs * n_batches,
        desc="two-tower",
        disable=not show_progress or rank != 0,
        leave=False,
    )
    for _ in range(cfg.epochs):
        perm = torch.from_numpy(rng.permutation(n))
        for b in range(n_batches):
            lo = b * global_bs + rank * local_bs
            idx = perm[lo : lo + local_bs]
            tgt = targets_all[idx]
            users, items = trained(hist[sess[idx]], tgt)
            loss = in_batch_logq_loss(users, items, tgt, log_q, cfg.temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
    bar.close()
    model.eval()
    return model


@torch.no_grad()
def encode_items(model: TwoTower, n_items: int) -> np.ndarray:
    """``(n_items, dim)`` float32 item vectors."""
    return model.item(torch.arange(n_items)).numpy().astype(np.float32)


@torch.no_grad()
def encode_users(model: TwoTower, histories: np.ndarray, batch: int = 4096) -> np.ndarray:
    """``(n, dim)`` float32 user vectors for padded histories."""
    out = [
        model.user(torch.from_numpy(histories[i : i + batch])).numpy()
        for i in range(0, len(histories), batch)
    ]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)
