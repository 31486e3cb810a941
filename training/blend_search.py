"""Model scorers and the validation search of ALS size and hybrid blend weights.

Everything here is chosen on a validation cut that lies before the evaluation cut, so the test
period never influences a setting. Discovery weights are chosen on ``novel`` recall (the only
part that can find new items); the buy-again weight and half-life on ``all`` recall.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from recsys.hybrid import HybridParams, blend_scores
from training.blend_cache import CachedSplit, Source, SourceFn, cache_split, sample_users
from training.config import HybridGrid
from training.evaluation import EvalSplit, Scorer
from training.fit import Fitted
from training.item_models import binary_purchases
from training.ranking import map_blocks, one_thread

SELECT_K = 20
KEY = f"recall@{SELECT_K}"
DROP_BOUGHT = "bought"


def _als_scorer(fitted: Fitted, factors: int) -> SourceFn:
    uf, itf = fitted.als[factors]
    return lambda users: uf[users] @ itf.T


def discovery_sources(fitted: Fitted, factors: int) -> dict[str, SourceFn]:
    """Scorers of every discovery source (the same sources serving uses)."""
    out: dict[str, SourceFn] = {
        "als": _als_scorer(fitted, factors),
        "trend": _constant_rows(fitted.trend),
    }
    if fitted.tt_users is not None and fitted.tt_items is not None:
        tu, ti = fitted.tt_users, fitted.tt_items
        out["two_tower"] = lambda users: tu[users] @ ti.T
    bought = binary_purchases(fitted.purchases)
    for name, w in fitted.item_item.items():
        out[name] = _item_item_scorer(bought, w)
    return out


def _item_item_scorer(bought: sp.csr_matrix, w: sp.csr_matrix) -> SourceFn:
    return lambda users: np.asarray((bought[users] @ w).toarray(), dtype=np.float32)


def model_scorers(fitted: Fitted, factors: int, params: HybridParams) -> dict[str, Scorer]:
    """Scorers of the trained models: ``als``, ``two_tower``, item-item models and ``hybrid``."""
    repeat = fitted.repeat_matrix(params.repeat_half_life_days, params.repeat_item_exponent)
    sources = discovery_sources(fitted, factors)
    used = [n for n, w in params.discovery_weights.items() if w > 0 and n in sources]

    bought = fitted.purchases

    def hybrid(users: np.ndarray) -> np.ndarray:
        disc = {n: sources[n](users) for n in used}
        out = blend_scores(repeat[users].toarray(), disc, params)
        if params.exclude_purchased:
            out[bought[users].toarray() > 0] = -np.inf
        return out

    out: dict[str, Scorer] = {"hybrid": hybrid}
    out.update({n: fn for n, fn in sources.items() if n in ("als", "two_tower")})
    out.update({f"baseline/{n}": sources[n] for n in fitted.item_item})
    return out


@dataclass
class BlendChoice:
    """The chosen settings and the validation table that led to them."""

    factors: int
    params: HybridParams
    trials: list[dict[str, object]] = field(default_factory=list)
    trend_half_life_days: float | None = None


def validation_recall(trials: list[dict[str, object]]) -> dict[str, float]:
    """The chosen blend's Recall@20 on the validation sample, per mode, from its trials.

    ``novel`` is the discovery search's best, ``all`` the buy-again step's (the blend with
    bought items, or leaving them out, whichever the search kept).
    """
    steps = {"novel": ("discovery",), "all": ("repeat", "exclude_purchased")}
    out: dict[str, float] = {}
    for mode, names in steps.items():
        key = "novel_" + KEY if mode == "novel" else KEY
        scores = [cast(float, t[key]) for t in trials if t.get("step") in names]
        if scores:
            out[mode] = round(max(scores), 4)
    return out


def _repeat_key(half_life: float, exponent: float) -> str:
    return f"repeat:{half_life:g}:{exponent:g}"


def _coordinate_search(
    cache: CachedSplit, grids: dict[str, list[float]], start: dict[str, float], rounds: int
) -> tuple[dict[str, float], float, list[dict[str, object]]]:
    """Coordinate ascent over unnormalised source weights (normalised when blending)."""
    trials: list[dict[str, object]] = []

    def score(w: dict[str, float]) -> float:
        total = sum(w.values())
        return cache.recall({n: v / total for n, v in w.items()}) if total > 0 else -1.0

    best_w, best = dict(start), score(start)
    for _ in range(rounds):
        improved = False
        for name, grid in grids.items():
            # A candidate differs from the best so far only in this coordinate, so the grid's
            # points are scored side by side and then taken in order as before.
            base = dict(best_w)
            cands = [{**base, name: value} for value in grid]
            for cand, r in zip(cands, map_blocks(score, cands), strict=True):
                trials.append({"step": "discovery", **cand, "novel_" + KEY: r})
                if r > best + 1e-9:
                    best_w, best, improved = cand, r, True
        if not improved:
            break
    return best_w, best, trials


def choose_blend(
    fitted: Fitted,
    split_all: EvalSplit,
    split_novel: EvalSplit,
    grid: HybridGrid,
    show_progress: bool = False,
    seed: int = 0,
) -> BlendChoice:
    """Choose the ALS size, discovery weights, then buy-again weight, half-life and exponent.

    Every source scores a sample of the validation shoppers once; each grid point is then a
    weighted sum over cached candidate lists (:mod:`training.blend_cache`).

    Parameters
    ----------
    fitted:
        Models fitted on the events before the validation cut (one ALS per candidate size).
    split_all, split_novel:
        Validation truth in both modes.
    grid:
        Candidate values, shopper sample size and candidate depth.
    show_progress:
        Show a progress bar over the steps.
    seed:
        Seed of the shopper sample.

    Returns
    -------
    BlendChoice
    """
    with one_thread():
        return _choose_blend(fitted, split_all, split_novel, grid, show_progress, seed)


def _choose_blend(
    fitted: Fitted,
    split_all: EvalSplit,
    split_novel: EvalSplit,
    grid: HybridGrid,
    show_progress: bool,
    seed: int,
) -> BlendChoice:
    trials: list[dict[str, object]] = []
    rows_novel = sample_users(split_novel, grid.max_users, seed)
    rows_all = sample_users(split_all, grid.max_users, seed)
    steps = tqdm(total=3, desc="blend search", disable=not show_progress)
    best_f, best = next(iter(fitted.als)), -1.0
    for f in fitted.als if len(fitted.als) > 1 else []:
        c = cache_split(split_novel, rows_novel, {"als": _als_scorer(fitted, f)}, grid.depth)
        r = c.recall({"als": 1.0})
        trials.append({"step": "als_factors", "factors": f, "novel_" + KEY: r})
        if r > best:
            best_f, best = f, r
    steps.update(1)
    sources = discovery_sources(fitted, best_f)
    grids = {
        "als": grid.als_weights,
        "two_tower": grid.two_tower_weights,
        "trend": grid.trend_weights,
        "ease": grid.ease_weights,
        "rp3beta": grid.rp3beta_weights,
    }
    grids = {n: g for n, g in grids.items() if n in sources and g}
    trend_fns = {hl: fitted.trend_vector(hl) for hl in grid.trend_half_lives_days}
    cache = cache_split(
        split_novel,
        rows_novel,
        {
            **{n: sources[n] for n in grids if n != "trend"},
            **{_trend_key(hl): fn for hl, fn in trend_fns.items()},
        },
        grid.depth,
    )
    best, raw, trend_hl = -1.0, {"als": 1.0}, grid.trend_half_lives_days[0]
    for hl in grid.trend_half_lives_days:
        # The cache names each half-life's trend apart; the search sees it as "trend".
        view = CachedSplit(
            items=cache.items,
            scores={**cache.scores, "trend": cache.scores[_trend_key(hl)]},
            hits=cache.hits,
            denom=cache.denom,
        )
        got, r, disc_trials = _coordinate_search(view, grids, {"als": 1.0}, grid.rounds)
        trials.extend({**t, "trend_half_life": hl} for t in disc_trials)
        if r > best + 1e-9:
            best, raw, trend_hl = r, got, hl
    total = sum(raw.values())
    best_disc = {n: round(v / total, 6) for n, v in raw.items() if v > 0}
    all_sources: dict[str, Source] = {n: sources[n] for n in best_disc}
    if "trend" in all_sources:
        all_sources["trend"] = trend_fns[trend_hl]
    steps.update(1)
    repeat_fns: dict[str, Source] = {}
    for hl in grid.repeat_half_lives_days:
        for ex in grid.repeat_item_exponents:
            rep = fitted.repeat_matrix(hl, ex)
            repeat_fns[_repeat_key(hl, ex)] = rep
    repeat_fns[DROP_BOUGHT] = (fitted.purchases > 0).astype(np.float32).tocsr()
    cache_all = cache_split(split_all, rows_all, {**all_sources, **repeat_fns}, grid.depth)
    best_params, best = HybridParams(discovery_weights=best_disc), -1.0
    points = [
        (hl, ex, w)
        for hl in grid.repeat_half_lives_days
        for ex in grid.repeat_item_exponents
        for w in grid.repeat_weights
    ]

    def repeat_recall(point: tuple[float, float, float]) -> float:
        hl, ex, w = point
        others = {n: (1.0 - w) * v for n, v in best_disc.items()}
        return cache_all.recall({_repeat_key(hl, ex): w, **others})

    for (hl, ex, w), r in zip(points, map_blocks(repeat_recall, points), strict=True):
        trials.append(
            {"step": "repeat", "repeat_weight": w, "half_life": hl, "exponent": ex, KEY: r}
        )
        if r > best + 1e-9:
            best = r
            best_params = HybridParams(
                repeat_weight=w,
                repeat_half_life_days=hl,
                repeat_item_exponent=ex,
                discovery_weights=best_disc,
            )
    # Leaving bought items out entirely: a blend weight so negative it drops them.
    drop = {**{n: v for n, v in best_disc.items()}, DROP_BOUGHT: -1e6}
    r = cache_all.recall(drop)
    trials.append({"step": "exclude_purchased", KEY: r})
    if r > best + 1e-9:
        best_params = HybridParams(discovery_weights=best_disc, exclude_purchased=True)
    steps.update(1)
    steps.close()
    return BlendChoice(
        factors=best_f, params=best_params, trials=trials, trend_half_life_days=trend_hl
    )


def _trend_key(half_life: float) -> str:
    return f"trend:{half_life:g}"


def _constant_rows(vector: np.ndarray) -> SourceFn:
    # A read-only view: every row is the same vector, so nothing is copied per shopper.
    v = np.asarray(vector, dtype=np.float32)
    return lambda users: np.broadcast_to(v, (len(users), v.shape[0]))
