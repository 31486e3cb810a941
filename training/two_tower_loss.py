"""Losses of the two-tower model: full softmax over the catalog, sampled softmax above a size.

Both are multinomial likelihoods over a shopper's next purchases (as in Mult-VAE, Liang et al.
2018, and the softmax of YouTube-DNN, Covington et al. 2016): each example's targets share one
softmax over the candidate items, averaged per example. The *all* term teaches every next
purchase, buy-again included; the *novel* term removes the history items from the softmax
and scores only the targets the shopper never touched, which is what discovery is judged on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class Batch:
    """One training batch: histories and flat targets (``pos`` = row of each target)."""

    histories: torch.Tensor
    pos: torch.Tensor
    items: torch.Tensor
    novel: torch.Tensor


def _per_row_mean(values: torch.Tensor, pos: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Mean over rows (with at least one target) of the per-row mean of ``values``."""
    total = torch.zeros(n_rows, dtype=values.dtype).index_add_(0, pos, values)
    count = torch.zeros(n_rows, dtype=values.dtype).index_add_(0, pos, torch.ones_like(values))
    has = count > 0
    if not bool(has.any()):
        return values.sum() * 0.0
    return (total[has] / count[has]).mean()


def multinomial_loss(
    logits: torch.Tensor,
    history_cols: torch.Tensor,
    pos: torch.Tensor,
    cols: torch.Tensor,
    novel: torch.Tensor,
    novel_weight: float,
) -> torch.Tensor:
    """``(1 - w) * all + w * novel`` negative log-likelihood over candidate columns.

    Parameters
    ----------
    logits:
        ``[B, C]`` scores of the candidate columns.
    history_cols:
        ``[B, L]`` column of each history item, ``C`` where the item is padding or not a
        candidate (masked out of the novel softmax).
    pos, cols, novel:
        Row, column and novel flag of each target.
    novel_weight:
        Weight ``w`` of the novel term.
    """
    n_rows, n_cols = logits.shape
    loss = logits.new_zeros(())
    if novel_weight < 1.0:
        logp = torch.log_softmax(logits, dim=-1)
        loss = loss + (1.0 - novel_weight) * -_per_row_mean(logp[pos, cols], pos, n_rows)
    if novel_weight > 0.0 and bool(novel.any()):
        seen = torch.zeros(n_rows, n_cols + 1, dtype=torch.bool)
        seen.scatter_(1, history_cols, True)
        logp_n = torch.log_softmax(logits.masked_fill(seen[:, :n_cols], -1e4), dim=-1)
        keep = novel.nonzero().squeeze(-1)
        loss = loss + novel_weight * -_per_row_mean(
            logp_n[pos[keep], cols[keep]], pos[keep], n_rows
        )
    return loss


def full_softmax_loss(
    model: nn.Module, batch: Batch, n_items: int, temperature: float, novel_weight: float
) -> torch.Tensor:
    """Softmax over every item of the catalog (small catalogs: exact and cheap)."""
    users, items = model(batch.histories, torch.arange(n_items))
    logits = users @ items.T / temperature
    hist_cols = batch.histories.clamp(max=n_items)
    return multinomial_loss(logits, hist_cols, batch.pos, batch.items, batch.novel, novel_weight)


def sampled_softmax_loss(
    model: nn.Module,
    batch: Batch,
    n_items: int,
    temperature: float,
    novel_weight: float,
    n_negatives: int,
    target_prob: np.ndarray,
    rng: np.random.Generator,
    log_q: bool = True,
) -> torch.Tensor:
    """Softmax over the batch's targets plus uniformly sampled items, with log-Q correction.

    A candidate's logit is lowered by the log of its expected count in the candidate set
    (``n_negatives / n_items`` from the uniform draw plus its chance of being some row's
    target, from the target frequencies ``target_prob``), so that popular items, which are
    candidates in nearly every batch, are not over-penalised (Yi et al. 2019).
    """
    uniform = rng.integers(0, n_items, size=n_negatives)
    cand = np.unique(np.concatenate([batch.items.numpy(), uniform]))
    column = np.full(n_items + 1, len(cand), dtype=np.int64)
    column[cand] = np.arange(len(cand))
    col_t = torch.from_numpy(column)
    q = n_negatives / n_items + np.minimum(1.0, len(batch.items) * target_prob[cand])
    users, items = model(batch.histories, torch.from_numpy(cand))
    logits = users @ items.T / temperature
    if log_q:
        logits = logits - torch.from_numpy(np.log(q)).float()
    cols = col_t[batch.items]
    return multinomial_loss(
        logits, col_t[batch.histories], batch.pos, cols, batch.novel, novel_weight
    )
