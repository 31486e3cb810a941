"""onnxruntime wrapper of the exported two-tower user tower.

Serving embeds shoppers who were not in training (or who have events since) from their recent
item indices; the trainer uses the same wrapper for the torch/onnxruntime parity check, so the
graph that passed the check is the graph that serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from fairshelf.errors import InvalidArgument, ModelUnavailable


class UserTower:
    """Run the ONNX user tower.

    Parameters
    ----------
    path:
        ``two_tower_user.onnx`` of a bundle.
    history_length:
        Items per history (``manifest.two_tower.history_length``).
    pad_index:
        Padding index (``manifest.two_tower.pad_index`` = number of items).
    threads:
        onnxruntime intra-op threads.
    """

    def __init__(
        self, path: str | Path, history_length: int, pad_index: int, threads: int = 1
    ) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelUnavailable(f"cannot load user tower {path}: {exc}") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.history_length = history_length
        self.pad_index = pad_index

    def pad(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """Truncate/pad ragged histories (newest first) to ``[B, history_length]`` int64.

        Raises
        ------
        InvalidArgument
            If an item index is outside ``[0, pad_index)``.
        """
        out = np.full((len(histories), self.history_length), self.pad_index, dtype=np.int64)
        for row, h in enumerate(histories):
            arr = np.asarray(list(h)[: self.history_length], dtype=np.int64)
            if arr.size and (arr.min() < 0 or arr.max() >= self.pad_index):
                raise InvalidArgument(
                    f"history item index out of range [0, {self.pad_index})", field="recent_items"
                )
            out[row, : arr.size] = arr
        return out

    def embed_padded(self, recent_items: np.ndarray) -> np.ndarray:
        """Embed an already padded ``[B, history_length]`` int64 array."""
        arr = np.ascontiguousarray(recent_items, dtype=np.int64)
        if arr.ndim != 2 or arr.shape[1] != self.history_length:
            raise InvalidArgument(
                f"recent_items must have shape [B, {self.history_length}], got {arr.shape}",
                field="recent_items",
            )
        if arr.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        (vec,) = self.session.run(None, {self.input_name: arr})
        return np.asarray(vec, dtype=np.float32)

    def embed(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """User vectors ``[B, dim]`` for ragged histories of item indices, newest first.

        Parameters
        ----------
        histories:
            One list of recent item indices per shopper (may be empty: the vector of a shopper
            with no history).

        Returns
        -------
        numpy.ndarray
            float32 unit-norm vectors, comparable with ``two_tower_item_vectors.npy``.
        """
        return self.embed_padded(self.pad(histories))

    @property
    def dim(self) -> int:
        """Output dimension."""
        shape = self.session.get_outputs()[0].shape
        return int(shape[-1]) if isinstance(shape[-1], int) else -1
