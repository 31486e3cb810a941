"""The serving benchmark's catalog: 100,000 items, 200,000 shoppers, an ALS model fitted with
``implicit``, published through the real bundle writer.

Shoppers have two favourite categories (out of 20 top-level x 10 sub-categories) and buy a few
items there with a popularity skew, so the interaction matrix has the shape of a real store.
ALS is fitted by ``implicit`` on it; the same factors serve fairshelf (through its bundle and
FAISS HNSW index) and the naive baseline (``implicit``'s brute-force ``recommend``).
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.bundle import (
    ALS_INDEX,
    ALS_ITEM_FACTORS,
    ALS_USER_CANDIDATES,
    ALS_USER_FACTORS,
    CURRENT_LINK,
    INTERACTIONS,
    ITEMS,
    POPULARITY,
    USERS,
    AlsInfo,
    BundleWriter,
    DataSummary,
    Manifest,
)
from recsys.confidence import ConfidenceParams, bm25_idf, transform_weights
from recsys.hybrid import HybridParams
from recsys.index import IndexSettings
from recsys.index_tuning import build_tuned
from training.bundle_export import index_info, save_user_candidates
from training.config import UserCandidatesConfig

TOP, SUB = 20, 10
REF = datetime(2026, 6, 1, tzinfo=UTC)


def _catalog(rng: np.random.Generator, n_items: int) -> pd.DataFrame:
    cat = rng.integers(0, TOP * SUB, n_items)
    price = np.round(np.exp(rng.normal(3.0, 0.7, n_items)), 2)
    stock = rng.integers(0, 50, n_items)
    stock[rng.random(n_items) < 0.05] = 0
    return pd.DataFrame(
        {
            "item_id": [f"I{i:06d}" for i in range(n_items)],
            "title": [f"item {i}" for i in range(n_items)],
            "category": [f"c{c // SUB:02d}/s{c % SUB}" for c in cat],
            "base_price": price,
            "unit_cost": np.round(price * 0.6, 2),
            "stock": pd.array(stock, dtype="Int64"),
            "price_band": np.digitize(price, np.quantile(price, [0.2, 0.4, 0.6, 0.8])).astype(
                np.int8
            ),
        }
    )


def _interactions(
    rng: np.random.Generator, items: pd.DataFrame, n_users: int, per_user: int
) -> pd.DataFrame:
    leaf = (
        items["category"].str.slice(1, 3).astype(int) * SUB
        + items["category"].str.slice(5).astype(int)
    ).to_numpy()
    order = np.argsort(leaf, kind="stable")
    bounds = np.searchsorted(leaf[order], np.arange(TOP * SUB + 1))
    favs = rng.integers(0, TOP * SUB, (n_users, 2))
    pick_fav = favs[np.arange(n_users)[:, None], rng.integers(0, 2, (n_users, per_user))]
    lo, hi = bounds[pick_fav], bounds[pick_fav + 1]
    # Zipf-like skew inside a category: low ranks are the category's popular items.
    u = rng.random((n_users, per_user)) ** 2.5
    pos = lo + np.minimum((u * (hi - lo)).astype(np.int64), np.maximum(hi - lo - 1, 0))
    item_index = order[pos].ravel()
    user_index = np.repeat(np.arange(n_users), per_user)
    frame = pd.DataFrame({"user_index": user_index, "item_index": item_index})
    frame = frame.drop_duplicates(["user_index", "item_index"]).reset_index(drop=True)
    n = len(frame)
    frame["confidence"] = rng.uniform(1.0, 6.0, n).astype(np.float32)
    frame["purchases"] = (rng.random(n) < 0.4).astype(np.int32)
    return frame


def build_catalog_bundle(
    bundles_dir: Path,
    *,
    n_items: int = 100_000,
    n_users: int = 200_000,
    per_user: int = 10,
    factors: int = 64,
    seed: int = 0,
    log: bool = True,
) -> Path:
    """Generate the catalog, fit ALS with implicit, write a bundle under ``bundles_dir``.

    Returns
    -------
    pathlib.Path
        The bundle directory (``bundles_dir/current`` points at it). Reused if present and
        its index was built with today's index settings; rebuilt otherwise.
    """
    settings = IndexSettings()
    cands = UserCandidatesConfig()
    bundle_id = (
        "bench-"
        + hashlib.sha256(f"{n_items}-{n_users}-{seed}-{settings!r}-{cands!r}".encode()).hexdigest()[
            :8
        ]
    )
    current = bundles_dir / CURRENT_LINK
    if current.exists() and current.resolve().name == bundle_id:
        return current.resolve()
    if current.exists() and log:
        # Measuring serving on an index built otherwise (an older graph, another beam width,
        # no candidate table) would time something other than what the trainer writes today.
        print(f"  {current.resolve().name} was built with other index settings: rebuilding")
    from implicit.cpu.als import AlternatingLeastSquares

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    items = _catalog(rng, n_items)
    inter = _interactions(rng, items, n_users, per_user)
    idf = bm25_idf(inter["item_index"].to_numpy(), n_users, n_items)
    items["bm25_idf"] = idf
    counts = np.bincount(inter["item_index"], weights=inter["purchases"], minlength=n_items)
    items["trend_score"] = (counts / max(counts.max(), 1)).astype(np.float32)
    params = ConfidenceParams(
        bm25_avg_length=float(inter.groupby("user_index")["confidence"].sum().mean())
    )
    inter["weight"] = transform_weights(
        inter["user_index"].to_numpy(),
        inter["item_index"].to_numpy(),
        inter["confidence"].to_numpy(),
        params,
        idf,
    ).astype(np.float32)
    inter["repeat_score"] = np.where(inter["purchases"] > 0, 0.3, 0.0).astype(np.float32)
    inter["last_purchase"] = pd.Series(
        np.where(inter["purchases"] > 0, pd.Timestamp(REF), pd.NaT), dtype="datetime64[ns, UTC]"
    )
    matrix = sp.csr_matrix(
        (inter["weight"].to_numpy(), (inter["user_index"], inter["item_index"])),
        shape=(n_users, n_items),
        dtype=np.float32,
    )
    if log:
        print(f"  catalog: {n_items:,} items, {n_users:,} shoppers, {len(inter):,} interactions")
    als = AlternatingLeastSquares(
        factors=factors, iterations=4, regularization=0.1, random_state=seed
    )
    als.fit(matrix, show_progress=False)
    y = np.ascontiguousarray(als.item_factors, dtype=np.float32)
    x = np.ascontiguousarray(als.user_factors, dtype=np.float32)
    # The beam is chosen on some shoppers and the recall recorded on others, as the trainer
    # does (``training/bundle_export.py``).
    tuned = build_tuned(y, x, settings, seed=seed)
    index, recall = tuned.index, tuned.recall_at_20
    trend = items["trend_score"].to_numpy()
    pop = [("*", r, int(i), float(trend[i])) for r, i in enumerate(np.argsort(-trend)[:200])]
    top = items["category"].str.slice(0, 3).to_numpy()
    for scope in np.unique(top):
        members = np.flatnonzero(top == scope)
        best = members[np.argsort(-trend[members])][:200]
        pop += [(str(scope), r, int(i), float(trend[i])) for r, i in enumerate(best)]
    writer = BundleWriter(bundles_dir, bundle_id)
    writer.save_frame(ITEMS, items)
    writer.save_frame(USERS, pd.DataFrame({"user_id": [f"U{u:07d}" for u in range(n_users)]}))
    writer.save_frame(INTERACTIONS, inter)
    writer.save_frame(
        POPULARITY, pd.DataFrame(pop, columns=["scope", "rank", "item_index", "score"])
    )
    writer.save_array(ALS_ITEM_FACTORS, y)
    writer.save_array(ALS_USER_FACTORS, x)
    writer.save_index(ALS_INDEX, index)
    cand_info = save_user_candidates(
        writer, y, x, cands.length, cands.max_megabytes, ALS_USER_CANDIDATES
    )
    manifest = Manifest(
        bundle_id=bundle_id,
        created_at=datetime.now(UTC),
        model="als",
        seed=seed,
        data_fingerprint=hashlib.sha256(bundle_id.encode()).hexdigest(),
        data=DataSummary(
            events_path="synthetic",
            items_path="synthetic",
            n_events=len(inter),
            n_users=n_users,
            n_items=n_items,
            last_event=REF,
            reference_time=REF,
        ),
        config={"benchmark": True, "per_user": per_user},
        library_versions={},
        confidence=params,
        hybrid=HybridParams(repeat_weight=0.0),
        als=AlsInfo(
            factors=factors,
            iterations=4,
            index=index_info(tuned, settings, ALS_INDEX),
            user_candidates=cand_info,
        ),
    )
    path = writer.commit(manifest)
    if log:
        print(
            f"  bundle {path.name} ({index.kind}, efSearch {index.ef_search}, recall@20 "
            f"{recall:.4f} on held-out shoppers) written in "
            f"{time.perf_counter() - t0:.0f} s"
        )
    return path
