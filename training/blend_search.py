"""Model scorers and the validation search of ALS size and hybrid blend weights.

Everything here is chosen on a validation cut that lies before the evaluation cut, so the test
period never influences a setting. Discovery weights are chosen on ``novel`` recall (the only
part that can find new items); the buy-again weight and half-life on ``all`` recall.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from recsys.hybrid import HybridParams, blend_scores
from training.config import HybridGrid
from training.evaluation import EvalSplit, Scorer, evaluate
from training.fit import Fitted

SELECT_K = 20


def discovery_sources(fitted: Fitted, factors: int, users: np.ndarray) -> dict[str, np.ndarray]:
    """Dense discovery scores per source for ``users`` (the same sources serving uses)."""
    uf, itf = fitted.als[factors]
    out = {
        "als": uf[users] @ itf.T,
        "trend": np.tile(fitted.trend, (len(users), 1)),
    }
    if fitted.tt_users is not None and fitted.tt_items is not None:
        out["two_tower"] = fitted.tt_users[users] @ fitted.tt_items.T
    return out


def model_scorers(fitted: Fitted, factors: int, params: HybridParams) -> dict[str, Scorer]:
    """Scorers of the trained models: ``als``, ``two_tower`` (if trained) and ``hybrid``."""
    repeat = fitted.repeat_matrix(params.repeat_half_life_days)
    uf, itf = fitted.als[factors]

    def hybrid(users: np.ndarray) -> np.ndarray:
        return blend_scores(
            repeat[users].toarray(), discovery_sources(fitted, factors, users), params
        )

    def als(users: np.ndarray) -> np.ndarray:
        return uf[users] @ itf.T

    out: dict[str, Scorer] = {"hybrid": hybrid, "als": als}
    if fitted.tt_users is not None and fitted.tt_items is not None:
        tu, ti = fitted.tt_users, fitted.tt_items
        out["two_tower"] = lambda users: tu[users] @ ti.T
    return out


def _rows(split: EvalSplit, scores: np.ndarray) -> Scorer:
    """Scorer over precomputed rows aligned with ``split.users`` (sorted, unique)."""
    return lambda users: scores[np.searchsorted(split.users, users)]


@dataclass
class BlendChoice:
    """The chosen settings and the validation table that led to them."""

    factors: int
    params: HybridParams
    trials: list[dict[str, object]] = field(default_factory=list)


def choose_blend(
    fitted: Fitted,
    split_all: EvalSplit,
    split_novel: EvalSplit,
    grid: HybridGrid,
    show_progress: bool = False,
) -> BlendChoice:
    """Grid-search ALS size, discovery weights, then buy-again weight and half-life.

    Parameters
    ----------
    fitted:
        Models fitted on the events before the validation cut (one ALS per candidate size).
    split_all, split_novel:
        Validation truth in both modes.
    grid:
        Candidate values.
    show_progress:
        Show a progress bar over the grid.

    Returns
    -------
    BlendChoice
    """
    key = f"recall@{SELECT_K}"
    n_disc = len(grid.two_tower_weights if fitted.tt_users is not None else [0.0]) * len(
        grid.trend_weights
    )
    n_rep = len(grid.repeat_half_lives_days) * len(grid.repeat_weights)
    bar = tqdm(
        total=len(fitted.als) + n_disc + n_rep, desc="blend search", disable=not show_progress
    )
    trials: list[dict[str, object]] = []
    best_f, best = next(iter(fitted.als)), -1.0
    for f in fitted.als:
        p0 = HybridParams(repeat_weight=0.0, discovery_weights={"als": 1.0})
        r = evaluate(model_scorers(fitted, f, p0)["als"], split_novel, [SELECT_K])[key]
        trials.append({"step": "als_factors", "factors": f, "novel_" + key: r})
        bar.update(1)
        if r > best:
            best_f, best = f, r
    has_tt = fitted.tt_users is not None
    # Source scores do not change across the grid: compute them once per split, then every
    # grid point is one blend_scores call (the function serving uses) on cached rows.
    novel_src = discovery_sources(fitted, best_f, split_novel.users)
    zeros_novel = np.zeros_like(novel_src["als"])
    best_disc: dict[str, float] = {"als": 1.0}
    best = -1.0
    for tt_w in grid.two_tower_weights if has_tt else [0.0]:
        for tr_w in grid.trend_weights:
            bar.update(1)
            if tt_w + tr_w >= 1.0:
                continue
            disc = {"als": round(1.0 - tt_w - tr_w, 6), "two_tower": tt_w, "trend": tr_w}
            p = HybridParams(repeat_weight=0.0, discovery_weights=disc)
            blended = blend_scores(zeros_novel, novel_src, p)
            r = evaluate(_rows(split_novel, blended), split_novel, [SELECT_K])[key]
            trials.append({"step": "discovery", **disc, "novel_" + key: r})
            if r > best + 1e-9:
                best_disc, best = disc, r
    all_src = discovery_sources(fitted, best_f, split_all.users)
    best_params, best = HybridParams(discovery_weights=best_disc), -1.0
    for hl in grid.repeat_half_lives_days:
        repeat = fitted.repeat_matrix(hl)[split_all.users].toarray()
        for w in grid.repeat_weights:
            bar.update(1)
            p = HybridParams(repeat_weight=w, repeat_half_life_days=hl, discovery_weights=best_disc)
            blended = blend_scores(repeat, all_src, p)
            r = evaluate(_rows(split_all, blended), split_all, [SELECT_K])[key]
            trials.append({"step": "repeat", "repeat_weight": w, "half_life": hl, key: r})
            if r > best + 1e-9:
                best_params, best = p, r
    bar.close()
    return BlendChoice(factors=best_f, params=best_params, trials=trials)
