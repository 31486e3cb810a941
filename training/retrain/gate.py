"""The retraining gate: champion and challenger ranked for the same shoppers on the same window.

Both models are bundles and both are scored the way serving ranks a shopper it knows: the
shopper's trained vectors, the bundle's own buy-again + discovery blend
(:func:`recsys.hybrid.blend_scores` with the manifest's ``hybrid``). Only shoppers both models
know, and items both were trained on, take part, so neither model is judged on something the
other could not rank; the truth of a shopper is the set of those items they bought in the
window (purchases only, as in the evaluation protocol).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.bundle import Bundle
from recsys.hybrid import blend_scores
from training.ranking import top_k_rows
from training.retrain.gate_stats import PairedDifference, paired_bootstrap, per_user_metrics

K = 20
METRICS = ("recall@20", "ndcg@20")


@dataclass
class GateResult:
    """What the gate measured and decided."""

    window_start: str
    window_end: str
    n_users: int
    n_items: int
    n_purchases: int
    tolerance: float
    comparisons: dict[str, PairedDifference] = field(default_factory=dict)
    passed: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the run report."""
        out = asdict(self)
        out["comparisons"] = {k: asdict(v) for k, v in self.comparisons.items()}
        return out


def trained_items(bundle: Bundle) -> np.ndarray:
    """Ids of the items the bundle's training events touched."""
    seen = np.unique(bundle.interactions["item_index"].to_numpy())
    return bundle.item_ids[seen]


def bundle_scores(bundle: Bundle, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Blended serving scores of bundle user rows ``users`` over bundle item rows ``items``."""
    m = bundle.manifest
    repeat = np.zeros((len(users), len(items)), dtype=np.float32)
    col = pd.Series(np.arange(len(items)), index=items)
    for row, u in enumerate(users):
        bought, rep = bundle.purchased(int(u))
        pos = col.reindex(bought).to_numpy()
        ok = ~np.isnan(pos)
        repeat[row, pos[ok].astype(np.int64)] = rep[ok]
    disc = {"als": bundle.als_user_factors[users] @ bundle.als_item_factors[items].T}
    if bundle.two_tower_user_vectors is not None and bundle.two_tower_item_vectors is not None:
        disc["two_tower"] = (
            bundle.two_tower_user_vectors[users] @ bundle.two_tower_item_vectors[items].T
        )
    if "trend_score" in bundle.items.columns:
        trend = bundle.items["trend_score"].to_numpy(dtype=np.float32, na_value=0.0)[items]
        disc["trend"] = np.tile(trend, (len(users), 1))
    if bundle.item_item or m.hybrid.exclude_purchased:
        rows = [bundle.purchased(int(u))[0] for u in users]
        x = sp.csr_matrix(
            (
                np.ones(sum(len(r) for r in rows), dtype=np.float32),
                (np.repeat(np.arange(len(users)), [len(r) for r in rows]), np.concatenate(rows)),
            ),
            shape=(len(users), len(bundle.item_ids)),
        )
        for name, w in bundle.item_item.items():
            disc[name] = (x @ w).toarray()[:, items]
        if m.hybrid.exclude_purchased:
            out = blend_scores(repeat, disc, m.hybrid)
            out[x[:, items].toarray() > 0] = -np.inf
            return out
    return blend_scores(repeat, disc, m.hybrid)


def _lists(
    bundle: Bundle, user_ids: np.ndarray, item_ids: np.ndarray, batch: int = 512
) -> np.ndarray:
    """Top-K lists, in batches of shoppers so the dense score block stays small."""
    users = pd.Index(bundle.user_ids).get_indexer(user_ids)
    items = pd.Index(bundle.item_ids).get_indexer(item_ids)
    out = [
        top_k_rows(bundle_scores(bundle, users[lo : lo + batch], items), K)
        for lo in range(0, len(users), batch)
    ]
    return np.concatenate(out)


def compare(
    champion: Bundle,
    challenger: Bundle,
    window: pd.DataFrame,
    tolerance: float,
    n_resamples: int = 2000,
    seed: int = 0,
) -> GateResult:
    """Rank the window's shoppers with both bundles and decide.

    Parameters
    ----------
    champion, challenger:
        The serving bundle and the candidate, both trained before the window.
    window:
        Canonical events of the window (only purchases are used).
    tolerance:
        The challenger is refused when its mean Recall@20 or NDCG@20 is below the
        champion's by more than this (absolute) and the paired bootstrap interval of the
        difference lies wholly below zero (a drop that is not noise).
    n_resamples, seed:
        Paired bootstrap settings.

    Returns
    -------
    GateResult
        ``passed`` False with a reason when refused or when no shopper could be evaluated.
    """
    buys = window[window["event_type"] == "purchase"]
    users_both = np.intersect1d(champion.user_ids, challenger.user_ids)
    items_both = np.intersect1d(trained_items(champion), trained_items(challenger))
    buys = buys[
        buys["user_id"].astype(str).isin(users_both) & buys["item_id"].astype(str).isin(items_both)
    ]
    ts = window["timestamp"]
    result = GateResult(
        window_start=str(ts.min()) if len(ts) else "",
        window_end=str(ts.max()) if len(ts) else "",
        n_users=int(buys["user_id"].nunique()),
        n_items=len(items_both),
        n_purchases=len(buys),
        tolerance=tolerance,
    )
    if buys.empty:
        result.reason = (
            "no purchase in the window by a shopper both models know of an item both were "
            "trained on: nothing to compare"
        )
        return result
    item_pos = pd.Index(items_both)
    groups = buys.groupby(buys["user_id"].astype(str))["item_id"]
    user_ids = np.array(sorted(str(u) for u in groups.groups), dtype=object)
    truth = [np.unique(item_pos.get_indexer(groups.get_group(u).astype(str))) for u in user_ids]
    per_model = {}
    for name, bundle in (("champion", champion), ("challenger", challenger)):
        per_model[name] = per_user_metrics(_lists(bundle, user_ids, items_both), truth, K)
    worse = []
    for i, metric in enumerate(METRICS):
        cmp = paired_bootstrap(
            per_model["champion"][i], per_model["challenger"][i], n_resamples, seed=seed
        )
        result.comparisons[metric] = cmp
        # Worse by more than the tolerance, and not by chance: the interval is below zero.
        if cmp.difference < -tolerance and cmp.high < 0:
            worse.append(
                f"{metric} {cmp.challenger:.4f} vs champion {cmp.champion:.4f} "
                f"(difference {cmp.difference:+.4f}, {cmp.level:.0%} interval "
                f"[{cmp.low:+.4f}, {cmp.high:+.4f}])"
            )
    if worse:
        result.reason = (
            f"challenger worse than the champion by more than the tolerance {tolerance:g}, "
            "interval below zero: " + "; ".join(worse)
        )
        return result
    result.passed = True
    result.reason = (
        f"challenger not worse than the champion by more than the tolerance {tolerance:g} "
        "beyond chance"
    )
    return result
