"""The two-tower user tower applied to a shopper's recent items at request time.

New shoppers with a few events in the current session, and known shoppers with events since
training, get a vector from the exported ONNX user tower (SPEC §5) rather than only
popularity. This module only shapes the input (newest first, cut or padded to the tower's
history length); running the graph is :mod:`recsys.two_tower_runtime`'s job.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recsys.bundle import Bundle
from recsys.two_tower_runtime import UserTower

EmbedFn = Callable[[np.ndarray], np.ndarray]


class SessionTower:
    """Embed one shopper from item indices, newest first.

    Parameters
    ----------
    embed:
        ``[batch, history_length]`` int64 item indices -> ``[batch, dim]`` float32 vectors.
    history_length:
        Number of items the tower reads.
    pad_index:
        Index that pads short histories (the bundle's ``n_items``).
    """

    def __init__(self, embed: EmbedFn, history_length: int, pad_index: int) -> None:
        self.embed = embed
        self.history_length = history_length
        self.pad_index = pad_index

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> SessionTower | None:
        """The bundle's user tower, or ``None`` when the bundle has no two-tower model."""
        info = bundle.manifest.two_tower
        if info is None:
            return None
        tower = UserTower(bundle.path / info.user_tower, info.history_length, info.pad_index)
        return cls(tower.embed_padded, info.history_length, info.pad_index)

    def vector(self, items_newest_first: np.ndarray) -> np.ndarray:
        """User vector for a history (longer histories are cut to the newest items).

        Parameters
        ----------
        items_newest_first:
            int64 item indices.

        Returns
        -------
        numpy.ndarray
            float32 ``(dim,)`` vector.
        """
        row = np.full((1, self.history_length), self.pad_index, dtype=np.int64)
        hist = np.asarray(items_newest_first, dtype=np.int64)[: self.history_length]
        row[0, : hist.size] = hist
        return np.asarray(self.embed(row), dtype=np.float32)[0]
