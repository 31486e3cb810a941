"""Training loop of the two-tower model, single process or under ``torchrun`` (DDP).

Examples are (history before a visit, items bought next; see :mod:`training.two_tower_data`):
the user tower learns to embed a shopper from what they did before, exactly as it will be used
online. A slice of the shoppers is held out; training stops when their Recall@20 stops
improving and keeps the best epoch. Under
``torchrun`` every rank draws the same shuffled order (same seed) and takes its own slice of
each global batch, so the number of optimizer steps and the global batch match a single
process; gradients are averaged by DistributedDataParallel over gloo (CPU) or nccl (GPU).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import distributed as dist
from tqdm import tqdm

from training.ranking import top_k_rows
from training.two_tower_data import TwoTowerData
from training.two_tower_loss import Batch, full_softmax_loss, sampled_softmax_loss
from training.two_tower_model import TwoTower

MIN_BATCHES_PER_EPOCH = 8


class TwoTowerConfig(BaseModel):
    """Hyperparameters of the two-tower model (``two_tower`` section of the config file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    dim: int = Field(default=64, ge=2)
    history_length: int = Field(default=50, ge=1)
    epochs: int = Field(default=40, ge=1, description="most epochs; early stopping may end sooner")
    batch_size: int = Field(default=512, ge=2)
    learning_rate: float = Field(default=0.005, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    temperature: float = Field(default=0.1, gt=0)
    price_bands: int = Field(default=5, ge=1)
    target_types: list[str] = Field(default_factory=lambda: ["purchase"])
    target_window_days: float = Field(
        default=0.0, ge=0, description="later purchases within this many days are targets too"
    )
    novel_targets_only: bool = False
    reconstruction: bool = Field(
        default=True, description="also learn each shopper's final history -> all purchases"
    )
    novel_loss_weight: float = Field(default=0.5, ge=0, le=1)
    history_dropout: float = Field(default=0.5, ge=0, lt=1)
    sampled_softmax_above: int = Field(
        default=20_000, ge=2, description="catalog size above which the softmax is sampled"
    )
    negatives: int = Field(default=1024, ge=1, description="uniform negatives per batch")
    logq_correction: bool = True
    patience: int = Field(default=2, ge=1, description="epochs without validation gain")
    holdout_fraction: float = Field(default=0.1, ge=0, lt=1)
    holdout_max_users: int = Field(default=1000, ge=0)
    holdout_min_rows: int = Field(
        default=100,
        ge=0,
        description="fewer held-out visits than this, and a check on later purchases is used "
        "instead when one is given (the trainer's validation fit)",
    )
    threads: int = Field(default=0, ge=0, description="torch threads; 0 = min(2, cpu count)")
    als_warm_start: float = Field(
        default=3.0,
        ge=0,
        description="item ids fixed at the window's ALS item factors, scaled to this multiple "
        "of the random start's mean norm, when held-out shoppers say so (0: never)",
    )
    warm_start_margin: float = Field(
        default=0.2,
        ge=0,
        description="relative gain the ALS start must show on held-out shoppers (not on a "
        "check of later purchases, which ALS has not seen either)",
    )
    warm_start_z: float = Field(
        default=2.0,
        ge=0,
        description="standard errors (paired over held-out rows) the ALS start's gain must clear",
    )
    warm_start_max_items: int = Field(
        default=20_000,
        ge=0,
        description="largest catalog on which the ALS start is tried (the try is a second fit)",
    )


Check = Callable[[TwoTower], np.ndarray]


class FitResult(NamedTuple):
    """One fit's model and its check.

    ``score`` is the kept epoch's checked Recall@20 (all plus novel; -1 when nothing was
    checked), ``shares`` each checked row's part of it (:func:`holdout_shares` summed over
    the modes, or ``check``'s), ``on_later_purchases`` whether ``check`` replaced the
    held-out shoppers.
    """

    model: TwoTower
    score: float
    shares: np.ndarray
    on_later_purchases: bool


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
    """Limit torch intra-op threads (shared machines, one thread per rank under DDP).

    A fixed count, not one read from the host's load: the sums of a multi-threaded step are
    ordered by thread, and a seed must give the same model on the same machine.
    """
    n = cfg.threads or min(2, os.cpu_count() or 1)
    world, _ = _world()
    torch.set_num_threads(max(1, n // world))


def split_holdout(
    data: TwoTowerData, cfg: TwoTowerConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rows to train on and rows of held-out shoppers (for early stopping).

    Whole shoppers are held out, so the check measures what serving does: embed a history the
    model never trained on and rank the catalog for it. Only their latest visit is checked.
    """
    users = np.unique(data.row_user)
    n_hold = min(int(len(users) * cfg.holdout_fraction), cfg.holdout_max_users)
    if n_hold < 1 or n_hold >= len(users):
        return np.arange(data.n_rows), np.zeros(0, dtype=np.int64)
    held = np.isin(data.row_user, rng.choice(users, n_hold, replace=False))
    check = np.flatnonzero(held & ~data.reconstruction)
    # Each held-out shopper's latest visit: one row per shopper, like the evaluation.
    last = np.r_[data.row_user[check][1:] != data.row_user[check][:-1], True]
    return np.flatnonzero(~held), check[last]


@torch.no_grad()
def holdout_shares(
    model: TwoTower, data: TwoTowerData, rows: np.ndarray, n_items: int, k: int = 20
) -> np.ndarray:
    """Each held-out row's share of the mean Recall@k over all targets and over novel ones.

    ``(2, len(rows))``: row ``r``'s Recall@k over all (novel) targets divided by the number of
    rows with any (novel) target, 0 where it has none; each line sums to that mean. Recall@k =
    hits / min(|targets|, k), as in the evaluation protocol; for the novel line the history
    items are left out of the list, as the novel evaluation leaves bought items. Two fits
    scored on the same rows can so be compared row by row (a paired difference).
    """
    was_training = model.training
    model.eval()
    items = model.item(torch.arange(n_items))
    recall = np.zeros((2, len(rows)))
    has = np.zeros((2, len(rows)), dtype=bool)
    for lo in range(0, len(rows), 1024):
        r = rows[lo : lo + 1024]
        hist = data.histories[r]
        scores = (model.user(torch.from_numpy(hist)) @ items.T).numpy()
        top_all = top_k_rows(scores.copy(), k)
        # The history's items (padding excluded) left out, as the novel evaluation does.
        filled = hist < n_items
        seen = sp.csr_matrix(
            (np.ones(int(filled.sum())), (np.nonzero(filled)[0], hist[filled])),
            shape=(len(r), n_items),
        )
        top_novel = top_k_rows(scores, k, drop=seen)
        pos, item, novel = data.targets_of(r)
        for m, (top, keep) in enumerate(((top_all, np.ones_like(novel)), (top_novel, novel))):
            p, it = pos[keep], item[keep]
            hit = (top[p] == it[:, None]).any(axis=1).astype(np.float64)
            n_t = np.bincount(p, minlength=len(r))
            hits = np.bincount(p, weights=hit, minlength=len(r))
            got = n_t > 0
            recall[m, lo : lo + len(r)][got] = hits[got] / np.minimum(n_t[got], k)
            has[m, lo : lo + len(r)] = got
    model.train(was_training)
    return recall / np.maximum(has.sum(axis=1, keepdims=True), 1)


def _batch(
    data: TwoTowerData, rows: np.ndarray, pad: int, dropout: float, rng: np.random.Generator
) -> Batch:
    hist = data.histories[rows].copy()
    if dropout > 0:
        # Dropping history slots teaches the tower short and partial histories (new shoppers).
        hist[rng.random(hist.shape) < dropout] = pad
    pos, item, _ = data.targets_of(rows)
    # Novel = not visible in the (dropped-out) input: the items the tower has to find. Each
    # target is compared with its own row's history slots (not a rows x catalog mask).
    seen = (hist[pos] == item[:, None]).any(axis=1)
    return Batch(
        torch.from_numpy(hist),
        torch.from_numpy(pos),
        torch.from_numpy(item),
        torch.from_numpy(~seen),
    )


def train_two_tower(
    data: TwoTowerData,
    n_items: int,
    item_category: np.ndarray,
    item_band: np.ndarray,
    cfg: TwoTowerConfig,
    seed: int,
    show_progress: bool = True,
    epochs: int | None = None,
    als_items: np.ndarray | None = None,
    warm_start: bool = False,
    check: Check | None = None,
) -> TwoTower:
    """Fit the two-tower model, stopping early on Recall@20 of shoppers it did not train on.

    The softmax is over the whole catalog up to ``cfg.sampled_softmax_above`` items and
    sampled (batch targets plus uniform negatives, log-Q corrected) above. The kept model is
    the one of the epoch with the best checked Recall@20 (all plus novel): held-out shoppers'
    latest visits, or the purchases after the window where those are too few (``check``).
    Its epoch count is recorded in ``best_epochs``. With ``epochs`` given (the count early
    stopping chose on the validation window), every shopper trains for exactly that many
    epochs and nobody is held out: the final fit learns from all of them and skips the
    checks.

    With ``als_items`` (the ALS item factors of the same window) and no ``epochs``, a second
    model is fitted whose item ids are those factors, fixed (``_warm_start``); it is kept
    (``warm_started``) when its checked Recall@20 beats the random start's clearly
    (:func:`warm_start_wins`; with nothing to check the random start is kept). ALS's
    factors carry what the whole weighted history of every shopper says about an item, which
    a bag of 50 recent items learns slowly; where ALS itself is weak (MovieLens) they hurt,
    hence the check rather than a fixed choice.

    Parameters
    ----------
    data:
        Examples from :func:`training.two_tower_data.build_examples`; at least one row.
    n_items, item_category, item_band:
        Catalog size and per-item features.
    cfg:
        Hyperparameters.
    seed:
        Seeds initialisation, hold-out and shuffling (identical on every rank).
    show_progress:
        Show a progress bar (rank 0 only).
    epochs:
        Train this many epochs on every row, without hold-out or early stopping.
    als_items:
        ``(n_items, factors)`` ALS item factors of the window, or ``None``.
    warm_start:
        With ``epochs``: start from ``als_items`` (the validation window's choice).
    check:
        Scores a model as held-out shares (:func:`holdout_shares`'s form) on truth outside
        the examples (:func:`training.two_tower_check.future_check`). Without ``epochs``, and
        when the held-out shoppers have fewer than ``cfg.holdout_min_rows`` visits to check
        (a dozen on MovieLens 100K), it replaces them, and they train like everyone else.

    Returns
    -------
    TwoTower
        The trained model in eval mode (the unwrapped module under DDP).
    """
    set_threads(cfg)
    usable = als_items is not None and cfg.als_warm_start > 0
    # The final window repeats the validation window's choice; a checked fit tries both.
    checked = [False, True] if usable else [False]
    starts = [warm_start and usable] if epochs is not None else checked
    kept: TwoTower | None = None
    kept_score, kept_shares = -1.0, np.zeros(0)
    for warm in starts:
        start = als_items if warm else None
        fit = _fit(
            data, n_items, item_category, item_band, cfg, seed, show_progress, epochs, start, check
        )
        # The margin offsets a leak of the held-out check (below), which a check on later
        # purchases does not have: there the gain only has to stand out of the noise.
        margin = 0.0 if fit.on_later_purchases else cfg.warm_start_margin
        if kept is None or warm_start_wins(
            fit.score, fit.shares, kept_score, kept_shares, cfg, margin
        ):
            kept, kept_score, kept_shares = fit.model, fit.score, fit.shares
    assert kept is not None
    return kept


def warm_start_wins(
    score: float,
    shares: np.ndarray,
    base_score: float,
    base_shares: np.ndarray,
    cfg: TwoTowerConfig,
    margin: float | None = None,
) -> bool:
    """Whether the ALS start's score beats the random start's clearly enough.

    ALS was fitted on the held-out shoppers' events too, which flatters the ALS start in the
    held-out check: there it has to win by ``margin`` (default ``cfg.warm_start_margin``;
    MovieLens: +6% held out, far worse after). And the gain has to stand
    ``cfg.warm_start_z`` standard errors above zero, paired over the same checked rows: on a
    small window the held-out check holds a dozen shoppers, and a margin alone let chance pick
    the ALS start for 6 seeds in 10 there. A score of -1 means nothing was checked: nothing to
    choose on.
    """
    margin = cfg.warm_start_margin if margin is None else margin
    if score < 0 or score <= base_score * (1.0 + margin):
        return False
    diff = shares - base_shares
    if diff.size < 2:
        return cfg.warm_start_z == 0
    # Each row's share is its recall over the row count, so the gain is their sum.
    return float(diff.sum()) > cfg.warm_start_z * float(np.sqrt(diff.size) * diff.std(ddof=1))


def _fit(
    data: TwoTowerData,
    n_items: int,
    item_category: np.ndarray,
    item_band: np.ndarray,
    cfg: TwoTowerConfig,
    seed: int,
    show_progress: bool,
    epochs: int | None,
    als_items: np.ndarray | None,
    check: Check | None = None,
) -> FitResult:
    """One fit (see :func:`train_two_tower`)."""
    world, rank = _world()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = TwoTower(n_items, item_category, item_band, cfg.dim, cfg.history_length)
    if als_items is not None:
        _warm_start(model, als_items, cfg.als_warm_start)
    trained: torch.nn.Module = model
    if world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    everyone, nobody = np.arange(data.n_rows), np.zeros(0, dtype=np.int64)
    fixed = epochs is not None
    train_rows, held_rows = (everyone, nobody) if fixed else split_holdout(data, cfg, rng)
    later = not fixed and check is not None and len(held_rows) < cfg.holdout_min_rows
    score_epoch: Check | None = None
    if later:
        # Nobody is held out; the shuffles start from the seed, as the final fit's do.
        train_rows, held_rows, rng = everyone, nobody, np.random.default_rng(seed)
        score_epoch = check
    elif len(held_rows):
        score_epoch = lambda m: holdout_shares(m, data, held_rows, n_items).sum(axis=0)  # noqa: E731

    counts = np.bincount(data.target_item, minlength=n_items) + 1.0
    target_prob = counts / counts.sum()
    n = len(train_rows)
    # Small windows (a few hundred visits) still get enough optimizer steps per epoch for
    # early stopping to see progress between checks.
    global_bs = max(2, min(cfg.batch_size, n // MIN_BATCHES_PER_EPOCH))
    local_bs = max(1, global_bs // world)
    n_batches = max(1, n // global_bs)
    sampled = n_items > cfg.sampled_softmax_above
    # Fused: one kernel over every parameter, a third of the step time of the per-tensor loop
    # on a 50,000-row item table (the update is the same Adam).
    opt = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        fused=True,
    )
    model.train()
    best, best_state, stale = -1.0, copy.deepcopy(model.state_dict()), 0
    bar = tqdm(
        total=cfg.epochs, desc="two-tower", disable=not show_progress or rank != 0, leave=False
    )
    best_epochs = 0
    best_shares = np.zeros(0)
    for epoch in range(1, (epochs or cfg.epochs) + 1):
        perm = train_rows[rng.permutation(n)]
        for b in range(n_batches):
            lo = b * global_bs + rank * local_bs
            batch = _batch(data, perm[lo : lo + local_bs], n_items, cfg.history_dropout, rng)
            if sampled:
                loss = sampled_softmax_loss(
                    trained, batch, n_items, cfg.temperature, cfg.novel_loss_weight,
                    cfg.negatives, target_prob, rng, cfg.logq_correction,
                )  # fmt: skip
            else:
                loss = full_softmax_loss(
                    trained, batch, n_items, cfg.temperature, cfg.novel_loss_weight
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
        bar.update(1)
        if score_epoch is None:
            continue
        shares = score_epoch(model)
        score = float(shares.sum())
        if score > best:
            best, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
            best_epochs, best_shares = epoch, shares
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    bar.close()
    if score_epoch is not None:
        model.load_state_dict(best_state)
    else:
        best_epochs = epoch
    model.best_epochs = best_epochs
    model.warm_started = als_items is not None
    model.eval()
    return FitResult(model, best, best_shares, later)


@torch.no_grad()
def _warm_start(model: TwoTower, als_items: np.ndarray, scale: float) -> None:
    """Set the item id embeddings to the ALS item factors and fix them.

    The factors are scaled so that their mean norm is ``scale`` times the random start's over
    the same dimensions (larger than 1: they outweigh the category and band embeddings;
    10 was worse on validation); dimensions past the factors keep their random start. Left
    trainable they drifted away within two epochs and held-out recall fell; fixed, the towers
    learn around them (see docs/training.md).
    """
    ids = model.user.features.ids.weight
    n, f = als_items.shape[0], min(als_items.shape[1], ids.shape[1])
    part = np.asarray(als_items[:, :f], dtype=np.float64)
    norm = float(np.linalg.norm(part, axis=1).mean())
    factor = scale * float(ids[:n, :f].norm(dim=1).mean()) / max(norm, 1e-12)
    ids[:n, :f] = torch.from_numpy((part * factor).astype(np.float32))
    ids.requires_grad_(False)


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
