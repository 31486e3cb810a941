"""``fairshelf evaluate BUNDLE``: re-run the temporal evaluation of a published bundle.

The models are not retrained: the bundle's own vectors are scored against the test period of
the recorded cut (baselines are refitted, they are cheap and deterministic for the seed). The
data must be the data the bundle was trained on (same fingerprint).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fairshelf.errors import FailedPrecondition
from recsys.bundle import load_bundle
from training.config import TrainConfig
from training.fit import fit_window
from training.trainer import evaluate_all, parse_cut, prepare, splits_for


def evaluate_bundle(
    bundle: str | Path,
    events_path: str | Path | None = None,
    items_path: str | Path | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Recompute ``metrics[mode][model][metric]`` for a bundle.

    Parameters
    ----------
    bundle:
        Bundle directory or bundles directory with ``current``.
    events_path, items_path:
        Data files; default to the paths recorded in the manifest.

    Returns
    -------
    dict
        Same layout as ``manifest.metrics``.

    Raises
    ------
    FailedPrecondition
        If the bundle has no evaluation cut or the data differs from the training data.
    ModelUnavailable
        If the bundle fails verification.
    """
    b = load_bundle(bundle, verify=True)
    m = b.manifest
    if m.evaluation is None:
        raise FailedPrecondition(f"bundle {b.path} was trained without --eval-cut")
    cfg = TrainConfig.model_validate({**m.config, "show_progress": False})
    data = prepare(events_path or m.data.events_path, items_path or m.data.items_path, cfg)
    if data.fingerprint != m.data_fingerprint:
        raise FailedPrecondition(
            f"data fingerprint {data.fingerprint[:12]} differs from the bundle's "
            f"{m.data_fingerprint[:12]}: not the data this bundle was trained on"
        )
    cut = parse_cut(m.evaluation.cut)
    ev = data.events
    fitted = fit_window(ev[ev["timestamp"] < cut], data.catalog, cfg, m.seed, [], False)
    if not np.array_equal(fitted.user_ids.to_numpy(dtype=str), b.user_ids):
        raise FailedPrecondition("user index of the bundle does not match the data")
    fitted.als[m.als.factors] = (b.als_user_factors, b.als_item_factors)
    fitted.tt_items = b.two_tower_item_vectors
    fitted.tt_users = b.two_tower_user_vectors
    splits = splits_for(fitted, data.catalog, ev[ev["timestamp"] >= cut])
    blend = m.validated_blend or m.hybrid
    return evaluate_all(fitted, m.als.factors, blend, splits, cfg, m.seed)
