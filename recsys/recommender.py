"""The online recommender: one object per loaded bundle, answering Recommend and SimilarItems.

Everything that does not depend on the request is computed in the constructor (item arrays,
per-user training rows and purchases as CSR arrays, ``YᵀY + λI`` for fold-in, trending lists,
boost array), so a call is a few dictionary look-ups, one small FAISS search and vector
operations on about ``k * oversample`` candidates. See ``docs/recommendations.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

import numpy as np

from fairshelf.errors import NotFound
from recsys.bundle import Bundle
from recsys.candidates import EligibleScan, VectorSource
from recsys.config import RecsysConfig
from recsys.experiments import VariantAssigner
from recsys.fatigue import fatigue_penalties
from recsys.filters import CandidateFilter, CatalogArrays
from recsys.fold_in import FoldIn
from recsys.rerank import boost_array, diversify, normalise
from recsys.session_tower import SessionTower
from recsys.similar import SimilarItems
from recsys.trending import TrendingLists
from recsys.types import (
    REASON_BOOSTED,
    REASON_CODES,
    REASON_INDEX,
    REASON_SIMILAR,
    REASON_TRENDING,
    REASON_TRENDING_CATEGORY,
    STRATEGY_NON_PERSONALIZED,
    STRATEGY_TRENDING,
    EventLike,
    Filters,
    Recommendation,
    RecommendedItem,
    RecommendRequest,
    check_id,
    check_k,
)
from recsys.user_scoring import PersonalScorer, ShopperState


@dataclass(frozen=True)
class Ranked:
    """Candidates with adjusted scores and reasons, before the cut to ``k``."""

    items: np.ndarray
    scores: np.ndarray
    reasons: np.ndarray
    fatigued: bool = False


class Recommender:
    """Recommendations and similar items from one model bundle.

    Parameters
    ----------
    bundle:
        A bundle from :func:`recsys.bundle.load_bundle`.
    config:
        Retrieval, re-ranking and experiment settings.

    Notes
    -----
    Read-only after construction and safe to share between threads. A new bundle means a new
    ``Recommender``, built off the request path and swapped in by the caller.
    """

    def __init__(self, bundle: Bundle, config: RecsysConfig | None = None) -> None:
        self.config = config or RecsysConfig()
        self.bundle = bundle
        manifest = bundle.manifest
        self.model_version = manifest.bundle_id
        self.catalog = CatalogArrays.from_frame(bundle.items)
        self.filter = CandidateFilter(self.catalog)
        self.item_position: dict[str, int] = {
            item_id: i for i, item_id in enumerate(self.catalog.item_ids.tolist())
        }
        self.assigner = VariantAssigner(self.config.experiment)
        trend = (
            bundle.items["trend_score"].to_numpy(dtype=np.float64, na_value=0.0)
            if "trend_score" in bundle.items.columns
            else np.zeros(self.catalog.n_items)
        )
        self.trending = TrendingLists(bundle.popularity, trend)
        self.boosts = boost_array(
            self.catalog, self.config.item_boosts, self.config.category_boosts
        )
        als = VectorSource(
            "als",
            np.ascontiguousarray(bundle.als_item_factors, np.float32),
            bundle.als_index,
            bundle.als_user_candidates,
        )
        sources = {"als": als}
        tower: SessionTower | None = None
        if bundle.two_tower_item_vectors is not None and bundle.two_tower_index is not None:
            sources["two_tower"] = VectorSource(
                "two_tower",
                np.ascontiguousarray(bundle.two_tower_item_vectors, np.float32),
                bundle.two_tower_index,
                bundle.two_tower_user_candidates,
            )
            tower = SessionTower.from_bundle(bundle)
        if self.config.ef_search is not None:
            for src in sources.values():
                hnsw = getattr(src.index.index, "hnsw", None)
                if hnsw is not None:
                    hnsw.efSearch = self.config.ef_search
        idf = (
            bundle.items["bm25_idf"].to_numpy(dtype=np.float32, na_value=0.0)
            if "bm25_idf" in bundle.items.columns
            else None
        )
        fold = FoldIn(bundle.als_item_factors, manifest.confidence, idf)
        ref = manifest.data.reference_time
        scan = EligibleScan(self.filter, sources)
        self.personal = PersonalScorer(
            bundle=bundle,
            config=self.config,
            sources=sources,
            fold_in=fold,
            tower=tower,
            item_filter=self.filter,
            scan=scan,
            reference_time=ref if ref.tzinfo else ref.replace(tzinfo=UTC),
        )
        self.similar = SimilarItems(
            als,
            self.filter,
            scan,
            self.config.oversample,
            self.config.max_candidates,
            self.config.scan_below,
        )

    def variant_of(self, user_id: str) -> str:
        """The experiment variant of ``user_id`` (stable across calls and replicas)."""
        return self.assigner.assign(user_id)

    def recommend(
        self,
        request: RecommendRequest,
        recent_events: Sequence[EventLike] = (),
        opted_out: bool = False,
    ) -> Recommendation:
        """Rank ``request.k`` items for one shopper.

        Parameters
        ----------
        request:
            Validated request (user, k, context, filters, personalized).
        recent_events:
            The shopper's events since the bundle's training data, any order.
        opted_out:
            The stored opt-out flag; when set, nothing about the shopper is used.

        Returns
        -------
        Recommendation
            At most ``k`` items, with model version, variant and strategy.
        """
        variant = self.assigner.assign(request.user_id)
        anchor = self._anchor(request)
        category = self._context_category(request, anchor)
        if opted_out or not request.personalized:
            ranked = self._trending(request, category, anchor, None)
            return self._respond(request, ranked, variant, False, STRATEGY_NON_PERSONALIZED)
        state = self.personal.shopper_state(request.user_id, recent_events)
        if state.has_signal:
            personal = self.personal.candidates(request, state, variant, anchor)
            if personal is not None:
                items, raw, reasons, strategy = personal
                ranked = self._rerank(request, items, raw, reasons, state, category)
                return self._respond(request, ranked, variant, True, strategy)
        ranked = self._trending(request, category, anchor, state)
        uses_shopper = ranked.fatigued or (
            request.filters.exclude_purchased and state.purchased.size > 0
        )
        return self._respond(request, ranked, variant, uses_shopper, STRATEGY_TRENDING)

    def similar_items(
        self, item_id: str, k: int = 20, filters: Filters | None = None
    ) -> list[RecommendedItem]:
        """Items most similar to ``item_id`` (for a product page).

        Parameters
        ----------
        item_id:
            Anchor item.
        k:
            Number wanted, 1..1000.
        filters:
            Catalog filters (stock, category, price); defaults to in-stock only.

        Returns
        -------
        list of RecommendedItem
            Best first, reason ``"similar_item"``, score = cosine similarity.

        Raises
        ------
        NotFound
            If the bundle does not know ``item_id``.
        InvalidArgument
            If ``item_id`` is blank or ``k`` is out of range.
        """
        check_id(item_id, "item_id")
        check_k(k)
        item = self.item_position.get(item_id)
        if item is None:
            raise NotFound(f"item {item_id!r} is not in model {self.model_version}")
        items, scores = self.similar.similar(item, k, filters or Filters())
        ids = self.catalog.item_ids
        return [
            RecommendedItem(str(ids[i]), float(s), REASON_SIMILAR)
            for i, s in zip(items.tolist(), scores.tolist(), strict=True)
        ]

    # -- internals ---------------------------------------------------------------------------

    def _anchor(self, request: RecommendRequest) -> int | None:
        item_id = request.context.item_id
        return None if item_id is None else self.item_position.get(item_id)

    def _context_category(self, request: RecommendRequest, anchor: int | None) -> str | None:
        if request.context.category is not None:
            return request.context.category
        if anchor is not None:
            return self.catalog.categories[int(self.catalog.category_codes[anchor])]
        return None

    def _trending(
        self,
        request: RecommendRequest,
        category: str | None,
        anchor: int | None,
        state: ShopperState | None,
    ) -> Ranked:
        filters = request.filters
        purchased = state.purchased if state is not None else None

        def keep(items: np.ndarray) -> np.ndarray:
            mask = self.filter.mask(items, filters, purchased)
            return mask if anchor is None else mask & (items != anchor)

        need = request.k * self.config.oversample
        got = self.trending.candidates(category, need, keep)
        n = got.items.size
        # Rank position is the score: tiers (category, catalog, all items) are already ordered.
        raw = 1.0 - np.arange(n, dtype=np.float64) / max(n, 1)
        reasons = np.where(
            got.in_scope, REASON_INDEX[REASON_TRENDING_CATEGORY], REASON_INDEX[REASON_TRENDING]
        ).astype(np.int8)
        return self._rerank(request, got.items, raw, reasons, state, category)

    def _rerank(
        self,
        request: RecommendRequest,
        items: np.ndarray,
        raw: np.ndarray,
        reasons: np.ndarray,
        state: ShopperState | None,
        category: str | None,
    ) -> Ranked:
        cfg = self.config
        score = normalise(raw)
        if self.boosts is not None and items.size:
            boost = self.boosts[items]
            score = score + boost
            reasons = np.where(boost > 0, REASON_INDEX[REASON_BOOSTED], reasons).astype(np.int8)
        fatigued = False
        if state is not None and state.impressions:
            pen = fatigue_penalties(
                items,
                self.item_position,
                state.impressions,
                cfg.fatigue_threshold,
                cfg.fatigue_penalty,
            )
            if pen is not None:
                score = score - pen
                fatigued = True
        # Inside a browsed category every item shares the top level, so diversify one level down.
        groups = self.catalog.category_codes if category else self.catalog.top_codes
        order = diversify(score, groups[items], request.k, cfg.diversity_lambda, cfg.category_cap)
        return Ranked(items[order], score[order], reasons[order], fatigued)

    def _respond(
        self,
        request: RecommendRequest,
        ranked: Ranked,
        variant: str,
        personalized: bool,
        strategy: str,
    ) -> Recommendation:
        ids = self.catalog.item_ids[ranked.items].tolist()
        out = tuple(
            RecommendedItem(i, s, r)
            for i, s, r in zip(
                ids,
                ranked.scores.tolist(),
                [REASON_CODES[c] for c in ranked.reasons.tolist()],
                strict=True,
            )
        )
        return Recommendation(
            items=out,
            model_version=self.model_version,
            variant=variant,
            personalized=personalized,
            strategy=strategy,
        )
