"""The two-tower retrieval model (torch): item tower and recency-weighted bag user tower.

The user tower has no user-id embedding on purpose: it embeds a shopper from the items they
interacted with recently, so a shopper who was not in training (or who has new events since)
gets a personal vector from the same exported ONNX graph. Item features (category, price band)
are baked into both towers as buffers, so the ONNX user tower needs only item indices.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ItemFeatures(nn.Module):
    """Item embedding = id + category + price band, shared by both towers."""

    def __init__(
        self, n_items: int, item_category: np.ndarray, item_band: np.ndarray, dim: int
    ) -> None:
        super().__init__()
        n_cat = int(item_category.max()) + 2 if len(item_category) else 2
        n_band = int(item_band.max()) + 2 if len(item_band) else 2
        # Index n_items is padding: its id, category and band rows stay zero.
        self.pad_index = n_items
        cat = np.append(item_category.astype(np.int64), n_cat - 1)
        band = np.append(item_band.astype(np.int64), n_band - 1)
        self.item_category_table: torch.Tensor
        self.item_band_table: torch.Tensor
        self.register_buffer("item_category_table", torch.from_numpy(cat))
        self.register_buffer("item_band_table", torch.from_numpy(band))
        self.ids = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.cats = nn.Embedding(n_cat, dim, padding_idx=n_cat - 1)
        self.bands = nn.Embedding(n_band, dim, padding_idx=n_band - 1)
        for emb in (self.ids, self.cats, self.bands):
            nn.init.normal_(emb.weight, std=0.05)
            with torch.no_grad():
                emb.weight[emb.padding_idx] = 0.0

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """Embed item indices of any shape; padding embeds to zero."""
        cat = self.item_category_table[items]
        band = self.item_band_table[items]
        return self.ids(items) + self.cats(cat) + self.bands(band)


class ItemTower(nn.Module):
    """Item vector from id, category and price band, L2-normalised."""

    def __init__(self, features: ItemFeatures, dim: int) -> None:
        super().__init__()
        self.features = features
        self.proj = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """``[B]`` item indices -> ``[B, dim]`` unit vectors."""
        x = self.features(items)
        return nn.functional.normalize(x + self.proj(x), dim=-1)


class UserTower(nn.Module):
    """User vector from a recency-weighted bag of the recent items, L2-normalised.

    Each history slot (newest first) has a learned recency weight, softmax-normalised over the
    filled slots (it starts as the plain mean); the weighted mean of the item features goes
    through a residual MLP. Padding slots have no weight; an empty history embeds to the
    learned vector of a shopper with no history. A per-item attention term was tried and
    over-fitted (see docs/training.md).
    """

    def __init__(self, features: ItemFeatures, dim: int, history_length: int) -> None:
        super().__init__()
        self.features = features
        self.pad_index = features.pad_index
        self.recency = nn.Parameter(torch.zeros(history_length))
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, recent_items: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` item indices (padded with ``pad_index``) -> ``[B, dim]`` unit vectors."""
        emb = self.features(recent_items)
        filled = recent_items != self.pad_index
        logits = self.recency.expand_as(filled)
        # A large negative rather than -inf keeps an all-padding row finite (weights 0).
        logits = logits.masked_fill(~filled, -1e4)
        weights = torch.softmax(logits, dim=-1) * filled.to(emb.dtype)
        pooled = (weights.unsqueeze(-1) * emb).sum(dim=1)
        return nn.functional.normalize(pooled + self.mlp(pooled), dim=-1)


class TwoTower(nn.Module):
    """Both towers over ONE item feature table.

    Sharing the item embeddings between the towers means every training example updates the
    representation of the items in the history as well as of the target; on sparse retail data
    this generalises much better than separate tables (see docs/training.md).

    Parameters
    ----------
    n_items:
        Catalog size; index ``n_items`` is padding.
    item_category, item_band:
        Per-item category index and price band (non-negative ints).
    dim:
        Embedding dimension.
    history_length:
        History slots the user tower reads.
    """

    def __init__(
        self,
        n_items: int,
        item_category: np.ndarray,
        item_band: np.ndarray,
        dim: int,
        history_length: int,
    ) -> None:
        super().__init__()
        features = ItemFeatures(n_items, item_category, item_band, dim)
        self.user = UserTower(features, dim, history_length)
        self.item = ItemTower(features, dim)
        # Set by training, read to fit the final window the same way: epochs of the kept state
        # and whether its item ids started from the window's ALS factors.
        self.best_epochs = 0
        self.warm_started = False

    def forward(
        self, histories: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return user vectors for ``histories`` and item vectors for ``targets``."""
        return self.user(histories), self.item(targets)
