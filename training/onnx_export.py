"""Export of the two-tower user tower to ONNX, with the torch/onnxruntime parity check."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from fairshelf.errors import FailedPrecondition
from recsys.two_tower_runtime import UserTower
from training.two_tower_model import TwoTower

PARITY_TOLERANCE = 1e-4


def export_user_tower(
    model: TwoTower,
    path: str | Path,
    history_length: int,
    check_histories: np.ndarray,
    seed: int = 0,
) -> float:
    """Write the user tower to ``path`` and check it against torch.

    Parameters
    ----------
    model:
        Trained model (eval mode).
    path:
        Output ``.onnx`` file.
    history_length:
        Fixed history width of the input.
    check_histories:
        Real padded histories to compare on (random ones are added, including empty rows).
    seed:
        Seed of the random check rows.

    Returns
    -------
    float
        Max absolute difference between torch and onnxruntime outputs.

    Raises
    ------
    FailedPrecondition
        If the difference exceeds ``PARITY_TOLERANCE``.
    """
    tower = model.user.eval()
    pad = tower.pad_index
    example = torch.full((2, history_length), pad, dtype=torch.int64)
    example[0, 0] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            tower,
            (example,),
            str(path),
            input_names=["recent_items"],
            output_names=["user_vector"],
            dynamic_axes={"recent_items": {0: "batch"}, "user_vector": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    rng = np.random.default_rng(seed)
    rand = rng.integers(0, pad + 1, size=(64, history_length))
    rand[0] = pad  # an empty history
    check = np.concatenate([check_histories[:256], rand]).astype(np.int64)
    with torch.no_grad():
        expected = tower(torch.from_numpy(check)).numpy()
    got = UserTower(path, history_length, pad).embed_padded(check)
    diff = float(np.max(np.abs(expected - got)))
    if diff > PARITY_TOLERANCE:
        raise FailedPrecondition(f"ONNX parity check failed: max abs diff {diff:.2e}")
    return diff
