"""Turn fitted models into a published bundle (see ``docs/bundle.md``)."""

from __future__ import annotations

import importlib.metadata
import time
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from recsys import bundle as B
from recsys.hybrid import HybridParams
from recsys.index import IndexSettings, VectorIndex
from recsys.index_tuning import TunedIndex, build_tuned
from recsys.user_candidates import rank_user_candidates
from training.blend_search import validation_recall
from training.config import TrainConfig
from training.elasticity_input import elasticity_table
from training.fit import Catalog, Fitted
from training.onnx_export import export_user_tower
from training.prepare import PreparedData
from training.report import write_report

LIBRARIES = ("numpy", "pandas", "scipy", "implicit", "torch", "faiss-cpu", "onnx", "onnxruntime")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the results."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def build_index(
    vectors: np.ndarray, queries: np.ndarray, cfg: TrainConfig, file: str, seed: int
) -> tuple[VectorIndex, B.IndexInfo]:
    """Build the index, choose its query beam and measure its recall@20 on user vectors.

    Parameters
    ----------
    vectors:
        Item vectors to index.
    queries:
        User vectors: one sample chooses the HNSW beam (the smallest meeting the configured
        recall target), a disjoint one measures the recall recorded in the manifest.
    cfg:
        Trainer configuration (``index`` section).
    file:
        Index file name inside the bundle.
    seed:
        Seed of the query samples.

    Returns
    -------
    (index, info):
        The index, its beam set, and its manifest entry.
    """
    settings = cfg.index_settings()
    tuned = build_tuned(vectors, queries, settings, seed=seed)
    return tuned.index, index_info(tuned, settings, file)


def index_info(tuned: TunedIndex, settings: IndexSettings, file: str) -> B.IndexInfo:
    """The manifest entry of an index built by :func:`recsys.index_tuning.build_tuned`."""
    index = tuned.index
    hnsw = index.kind == "hnsw"
    return B.IndexInfo(
        file=file,
        kind=index.kind,
        dim=index.dim,
        size=index.size,
        hnsw_m=tuned.hnsw_m if hnsw else None,
        ef_construction=settings.ef_construction if hnsw else None,
        # Read back from the index, so the manifest states the beam saved in the file.
        ef_search=index.ef_search,
        recall_at_20=tuned.recall_at_20,
        reason=tuned.reason,
        p99_search_ms=tuned.p99_ms,
        exact_p99_search_ms=tuned.exact_p99_ms,
    )


def save_user_candidates(
    writer: B.BundleWriter,
    item_vectors: np.ndarray,
    user_vectors: np.ndarray,
    length: int,
    max_megabytes: float,
    file: str,
) -> B.UserCandidatesInfo | None:
    """Rank every user's best ``length`` items exactly and write them; the manifest entry.

    ``None`` (nothing written) when ``length`` is 0, there are no users, or the table would
    exceed ``max_megabytes``: serving then searches the index for every shopper.
    """
    keep = min(length, item_vectors.shape[0])
    n_users = user_vectors.shape[0]
    if keep < 1 or n_users == 0 or n_users * keep * 4 > max_megabytes * 1e6:
        return None
    writer.save_array(file, rank_user_candidates(item_vectors, user_vectors, keep))
    return B.UserCandidatesInfo(file=file, length=keep)


def recall_note(name: str, info: B.IndexInfo, cfg: TrainConfig) -> list[str]:
    """A report note when an index's held-out recall@20 is below the configured target."""
    target = cfg.index.recall_target
    if info.recall_at_20 >= target:
        return []
    return [
        f"{name} index: recall@20 {info.recall_at_20:.4f} on held-out users is below the "
        f"target {target} at efSearch {info.ef_search} (raise index.ef_search, the largest "
        "beam the trainer may choose, or hnsw_m)"
    ]


def popularity_frame(catalog: Catalog, trend: np.ndarray, top_n: int) -> pd.DataFrame:
    """Top items per category prefix (and ``"*"`` for the whole catalog) by trend score."""
    cats = catalog.items["category"].fillna("").astype(str).to_numpy()
    scopes: dict[str, list[int]] = {"*": list(range(len(cats)))}
    for idx, cat in enumerate(cats):
        parts = [p for p in cat.split("/") if p]
        for depth in range(1, len(parts) + 1):
            scopes.setdefault("/".join(parts[:depth]), []).append(idx)
    frames = []
    for scope, members in scopes.items():
        m = np.asarray(members, dtype=np.int64)
        m = m[trend[m] > 0]
        order = m[np.argsort(-trend[m], kind="stable")][:top_n]
        frames.append(
            pd.DataFrame(
                {
                    "scope": scope,
                    "rank": np.arange(len(order), dtype=np.int32),
                    "item_index": order.astype(np.int32),
                    "score": trend[order].astype(np.float32),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def items_frame(catalog: Catalog, fitted: Fitted) -> pd.DataFrame:
    """``items.parquet``: catalog columns plus features the online side needs."""
    it = catalog.items
    out = pd.DataFrame({"item_id": catalog.item_ids.astype(str)})
    for col in ("title", "category", "base_price", "unit_cost", "stock"):
        out[col] = it[col].to_numpy() if col in it.columns else None
    out["category"] = out["category"].fillna("").astype(str)
    out["price_band"] = catalog.price_band.astype(np.int8)
    out["bm25_idf"] = fitted.idf
    out["trend_score"] = fitted.trend
    return out


def item_item_params(name: str, cfg: TrainConfig) -> dict[str, float]:
    """The hyperparameters of item-item model ``name`` (for the manifest)."""
    ii = cfg.item_item
    if name == "ease":
        return {"lambda": ii.ease_lambda}
    return {"alpha": ii.rp3beta_alpha, "beta": ii.rp3beta_beta}


def write_trained_bundle(
    *,
    bundles_dir: Path,
    data: PreparedData,
    cfg: TrainConfig,
    seed: int,
    fitted: Fitted,
    factors: int,
    params: HybridParams,
    validated: HybridParams,
    metrics: dict[str, dict[str, dict[str, float]]],
    eval_info: tuple[str, str, dict[str, int]] | None,
    trials: list[dict[str, object]],
    timings: dict[str, float],
    notes: list[str],
    started: datetime,
    total_start: float,
    make_current: bool = True,
    elasticities: Future[tuple[pd.DataFrame | None, str | None]] | None = None,
) -> Path:
    """Write every artefact, the report and the manifest; publish; return the bundle path.

    ``elasticities`` is the elasticity table already being fitted on another thread (from the
    events up to ``fitted.reference_time``); without it the table is fitted here.
    """
    t = time.perf_counter()
    bundle_id = f"{started.strftime('%Y%m%dT%H%M%S%fZ')}-{data.fingerprint[:8]}"
    w = B.BundleWriter(bundles_dir, bundle_id)
    user_f, item_f = fitted.als[factors]
    w.save_frame(B.ITEMS, items_frame(data.catalog, fitted))
    w.save_frame(B.USERS, pd.DataFrame({"user_id": fitted.user_ids.astype(str)}))
    inter = fitted.interactions.copy()
    rep = fitted.repeat_matrix(params.repeat_half_life_days, params.repeat_item_exponent)
    inter["repeat_score"] = (
        np.asarray(rep[inter["user_index"].to_numpy(), inter["item_index"].to_numpy()])
        .ravel()
        .astype(np.float32)
    )
    w.save_frame(B.INTERACTIONS, inter)
    w.save_frame(B.POPULARITY, popularity_frame(data.catalog, fitted.trend, cfg.popularity.top_n))
    w.save_array(B.ALS_ITEM_FACTORS, item_f)
    w.save_array(B.ALS_USER_FACTORS, user_f)
    als_index, als_info = build_index(item_f, user_f, cfg, B.ALS_INDEX, seed)
    notes = [*notes, *recall_note("ALS", als_info, cfg)]
    w.save_index(B.ALS_INDEX, als_index)
    cand = cfg.user_candidates
    als_cands = save_user_candidates(
        w, item_f, user_f, cand.length, cand.max_megabytes, B.ALS_USER_CANDIDATES
    )
    tt_info = None
    if fitted.two_tower is not None and fitted.tt_items is not None and fitted.tt_data:
        assert fitted.tt_users is not None
        tt_cfg = cfg.two_tower
        parity = export_user_tower(
            fitted.two_tower,
            w.path / B.TT_USER_TOWER,
            tt_cfg.history_length,
            fitted.tt_data.final_histories,
            seed,
        )
        w.save_array(B.TT_ITEM_VECTORS, fitted.tt_items)
        w.save_array(B.TT_USER_VECTORS, fitted.tt_users)
        tt_index, tt_index_info = build_index(
            fitted.tt_items, fitted.tt_users, cfg, B.TT_INDEX, seed
        )
        w.save_index(B.TT_INDEX, tt_index)
        notes = [*notes, *recall_note("two-tower", tt_index_info, cfg)]
        tt_info = B.TwoTowerInfo(
            dim=tt_cfg.dim,
            history_length=tt_cfg.history_length,
            pad_index=data.catalog.n_items,
            index=tt_index_info,
            user_candidates=save_user_candidates(
                w,
                fitted.tt_items,
                fitted.tt_users,
                cand.length,
                cand.max_megabytes,
                B.TT_USER_CANDIDATES,
            ),
            parity_max_abs_diff=parity,
            price_band_edges=data.catalog.band_edges,
        )
    item_item: dict[str, B.ItemItemInfo] = {}
    for name, matrix in fitted.item_item.items():
        if params.discovery_weights.get(name, 0.0) <= 0:
            continue
        file = B.ITEM_ITEM_FILE.format(name=name)
        w.save_sparse(file, matrix)
        item_item[name] = B.ItemItemInfo(
            file=file,
            top_k=cfg.item_item.top_k,
            nnz=int(matrix.nnz),
            params=item_item_params(name, cfg),
        )
    elasticity, note = (
        elasticities.result()
        if elasticities is not None
        else elasticity_table(data.events, data.catalog, fitted.reference_time)
    )
    if elasticity is not None:
        w.save_frame(B.ELASTICITY, elasticity)
    if note:
        notes = [*notes, note]
    if len(data.rejects.rows):
        data.rejects.write(w.path / B.REJECTS)
    timings["export"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - total_start
    ev = data.events
    train_ev = ev[ev["timestamp"] <= fitted.reference_time]
    manifest = B.Manifest(
        bundle_id=bundle_id,
        created_at=started,
        model=cfg.model,
        seed=seed,
        data_fingerprint=data.fingerprint,
        data=B.DataSummary(
            events_path=data.events_path,
            items_path=data.items_path,
            n_events=len(train_ev),
            n_users=fitted.n_users,
            n_items=data.catalog.n_items,
            first_event=train_ev["timestamp"].min().to_pydatetime(),
            last_event=train_ev["timestamp"].max().to_pydatetime(),
            reference_time=fitted.reference_time.to_pydatetime(),
            dropped_rows=data.dropped,
        ),
        config=cfg.model_dump(mode="json"),
        library_versions=library_versions(),
        confidence=fitted.confidence,
        hybrid=params,
        validated_blend=validated,
        als=B.AlsInfo(
            factors=factors,
            iterations=cfg.als.iterations,
            index=als_info,
            user_candidates=als_cands,
        ),
        two_tower=tt_info,
        item_item=item_item,
        evaluation=B.EvalInfo(
            cut=eval_info[0],
            validation_cut=eval_info[1],
            k_values=cfg.evaluation.k_values,
            n_eval_users=eval_info[2],
            validation_recall=validation_recall(trials),
        )
        if eval_info
        else None,
        metrics=metrics,
        timings_seconds={k: round(v, 3) for k, v in timings.items()},
    )
    write_report(w.path, manifest, trials, notes)
    return w.commit(manifest, make_current=make_current)
