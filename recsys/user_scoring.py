"""Personalised candidates: the shopper's vector(s), retrieval, and the buy-again blend.

Which vector a shopper gets (SPEC §5):

* events since training (view, click, cart, purchase on known items) -> a vector computed now:
  the ALS fold-in of their training rows plus those events, or the session user tower over
  their recent items, by experiment variant;
* otherwise, a shopper known to the bundle -> their trained vector;
* otherwise nothing: the caller serves trending.

Scores are blended with buy-again exactly as offline evaluation does
(:func:`recsys.hybrid.blend_scores`), restricted to the candidate set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from recsys.bundle import Bundle
from recsys.candidate_blend import TREND, VECTOR_SOURCES, blend_candidates, variant_params
from recsys.candidates import EligibleScan, VectorSource, search_candidates
from recsys.config import RecsysConfig
from recsys.fatigue import ENGAGEMENT_TYPES, unengaged_impressions
from recsys.filters import CandidateFilter, contains
from recsys.fold_in import FoldIn, event_confidence, merge_rows
from recsys.hybrid import HybridParams
from recsys.session_tower import SessionTower
from recsys.types import (
    REASON_BUY_AGAIN,
    REASON_INDEX,
    REASON_PROFILE,
    REASON_RECENT,
    REASON_SESSION,
    REASON_TRENDING,
    STRATEGY_FOLD_IN,
    STRATEGY_SESSION,
    STRATEGY_TRAINED,
    EventLike,
    RecommendRequest,
)

KnownEvent = tuple[int, str, datetime, int]

# Reason code index of each personalised strategy's own reason, resolved once.
_BASE_REASON: dict[str, int] = {
    STRATEGY_TRAINED: REASON_INDEX[REASON_PROFILE],
    STRATEGY_FOLD_IN: REASON_INDEX[REASON_RECENT],
    STRATEGY_SESSION: REASON_INDEX[REASON_SESSION],
}
_TRENDING = REASON_INDEX[REASON_TRENDING]
_BUY_AGAIN = REASON_INDEX[REASON_BUY_AGAIN]


@dataclass(frozen=True)
class ShopperState:
    """What one request knows about the shopper, gathered once per call.

    Parameters
    ----------
    user_index:
        Row in the bundle's user arrays, or ``None`` for a shopper the bundle never saw.
    events:
        Recent events on items the bundle knows, as ``(item_index, type, time, quantity)``.
    usable:
        How many of them carry a positive ALS confidence weight (fold-in input).
    engaged:
        How many of them are engagements (view, click, cart, purchase: user-tower input).
    purchased:
        Sorted item indices bought in training or in the recent events.
    repeat_items, repeat_scores:
        Buy-again candidates and their scores (training score plus one per recent purchase).
    impressions:
        item_id -> impressions after the last engagement (impression fatigue).
    has_signal:
        Whether a personal vector can be built.
    """

    user_index: int | None
    events: list[KnownEvent]
    usable: int
    engaged: int
    purchased: np.ndarray
    repeat_items: np.ndarray
    repeat_scores: np.ndarray
    impressions: dict[str, int] = field(default_factory=dict)
    has_signal: bool = False


class PersonalScorer:
    """Builds shopper vectors and scores personalised candidates for one bundle."""

    def __init__(
        self,
        bundle: Bundle,
        config: RecsysConfig,
        sources: dict[str, VectorSource],
        fold_in: FoldIn,
        tower: SessionTower | None,
        item_filter: CandidateFilter,
        scan: EligibleScan,
        reference_time: datetime,
    ) -> None:
        self.bundle = bundle
        self.config = config
        self.sources = sources
        self.fold_in = fold_in
        self.tower = tower
        self.filter = item_filter
        self.scan = scan
        self.reference_time = reference_time
        self.hybrid: HybridParams = bundle.manifest.hybrid
        self.params = bundle.manifest.confidence
        self.user_position = {u: i for i, u in enumerate(bundle.user_ids.tolist())}
        self.item_position = {it: i for i, it in enumerate(bundle.item_ids.tolist())}
        inter = bundle.interactions.sort_values(
            ["user_index", "confidence"], ascending=[True, False], kind="stable"
        )
        counts = np.bincount(inter["user_index"].to_numpy(np.int64), minlength=len(bundle.user_ids))
        # Training rows per user as CSR, strongest first (that order also feeds the tower).
        self.rows_indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.rows_items = inter["item_index"].to_numpy(np.int64)
        self.rows_conf = inter["confidence"].to_numpy(np.float64)
        trend = (
            bundle.items["trend_score"].to_numpy(dtype=np.float64, na_value=0.0)
            if "trend_score" in bundle.items.columns
            else np.zeros(len(bundle.item_ids))
        )
        self.trend_score = np.nan_to_num(trend)
        self.trend_scale = float(np.max(np.abs(self.trend_score))) if trend.size else 0.0
        self.trend_order = np.argsort(-self.trend_score, kind="stable").astype(np.int64)
        self.available = {*sources, TREND} if self.trend_scale > 0 else set(sources)
        self.available |= set(bundle.item_item)
        self._variant_params: dict[str, HybridParams] = {}

    def shopper_state(self, user_id: str, events: Sequence[EventLike]) -> ShopperState:
        """Gather everything the request needs about the shopper, in one pass over events."""
        if not isinstance(events, list | tuple):
            # Read twice below (vectors, then fatigue); a one-shot iterable must be kept.
            events = list(events)
        user = self.user_position.get(user_id)
        known: list[KnownEvent] = []
        usable = engaged = 0
        bought: dict[int, float] = {}
        weights = self.params.event_weights
        for ev in events:
            i = self.item_position.get(ev.item_id)
            if i is None:
                continue
            known.append((i, ev.event_type, ev.timestamp, ev.quantity))
            if weights.get(ev.event_type, 0.0) > 0.0:
                usable += 1
            if ev.event_type in ENGAGEMENT_TYPES:
                engaged += 1
            if ev.event_type == "purchase":
                # A purchase logged a moment ago is as fresh as buy-again gets: age 0 -> 1.0.
                bought[i] = bought.get(i, 0.0) + 1.0
        if user is not None:
            hist_items, hist_rep = self.bundle.purchased(user)
            for i, r in zip(hist_items.tolist(), hist_rep.tolist(), strict=True):
                bought[i] = bought.get(i, 0.0) + float(r)
        rep_items = np.fromiter(bought.keys(), dtype=np.int64, count=len(bought))
        rep_scores = np.fromiter(bought.values(), dtype=np.float64, count=len(bought))
        return ShopperState(
            user_index=user,
            events=known,
            usable=usable,
            engaged=engaged,
            purchased=np.sort(rep_items),
            repeat_items=rep_items,
            repeat_scores=rep_scores,
            impressions=unengaged_impressions(events) if events else {},
            has_signal=user is not None
            or usable >= self.config.fold_in_min_events
            or (self.tower is not None and engaged >= self.config.fold_in_min_events),
        )

    def _query(self, name: str, state: ShopperState) -> tuple[np.ndarray, str] | None:
        user = state.user_index
        if name == "als":
            if state.usable:
                items, conf = event_confidence(state.events, self.params, self.reference_time)
                if user is not None:
                    lo, hi = self.rows_indptr[user], self.rows_indptr[user + 1]
                    items, conf = merge_rows(
                        self.rows_items[lo:hi], self.rows_conf[lo:hi], items, conf
                    )
                return self.fold_in.vector(items, conf), STRATEGY_FOLD_IN
            if user is not None:
                return self.bundle.als_user_factors[user], STRATEGY_TRAINED
            return None
        if state.engaged and self.tower is not None:
            return self.tower.vector(self._tower_history(state)), STRATEGY_SESSION
        tt_users = self.bundle.two_tower_user_vectors
        if user is not None and tt_users is not None:
            return tt_users[user], STRATEGY_TRAINED
        return None

    def _item_item_scores(self, params: HybridParams, state: ShopperState) -> dict[str, np.ndarray]:
        """Catalog-wide scores ``x_u @ W`` of each weighted item-item part (``x_u``: bought)."""
        out: dict[str, np.ndarray] = {}
        if not state.purchased.size:
            return out
        for name, matrix in self.bundle.item_item.items():
            if params.discovery_weights.get(name, 0.0) > 0:
                out[name] = np.asarray(matrix[state.purchased].sum(axis=0), np.float64).ravel()
        return out

    def _tower_history(self, state: ShopperState) -> np.ndarray:
        """Recent engaged items newest first, then training items strongest first."""
        recent = [
            e[0]
            for e in sorted(state.events, key=lambda e: e[2], reverse=True)
            if e[1] in ENGAGEMENT_TYPES
        ]
        if state.user_index is not None:
            lo, hi = self.rows_indptr[state.user_index], self.rows_indptr[state.user_index + 1]
            recent.extend(self.rows_items[lo:hi].tolist())
        return np.asarray(list(dict.fromkeys(recent)), dtype=np.int64)

    def candidates(
        self,
        request: RecommendRequest,
        state: ShopperState,
        variant: str,
        anchor: int | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str] | None:
        """Personalised candidates with blended raw scores and reasons.

        Returns
        -------
        (items, scores, reasons, strategy) or None
            ``reasons`` are indices into :data:`recsys.types.REASON_CODES` (int8);
            ``None`` when no vector can be built for the shopper (serve trending instead).
        """
        params = self._variant_params.get(variant)
        if params is None:
            params = variant_params(variant, self.hybrid, self.available)
            if len(self._variant_params) < 64:
                self._variant_params[variant] = params
        names = [n for n in params.discovery_weights if n in VECTOR_SOURCES]
        queries: list[tuple[VectorSource, np.ndarray]] = []
        # The user row of each query that is that user's trained vector (ranked offline).
        rows: list[int | None] = []
        strategy = STRATEGY_TRAINED
        # The variant's retrievers first; another one only if none of them has a vector.
        for name in [*names, *(n for n in self.sources if n not in names)]:
            if queries and name not in names:
                break
            q = self._query(name, state)
            if q is None:
                continue
            if not queries:
                strategy = q[1]
            queries.append((self.sources[name], np.ascontiguousarray(q[0], np.float32)))
            rows.append(state.user_index if q[1] == STRATEGY_TRAINED else None)
        if not queries:
            return None
        if not any(src.name in params.discovery_weights for src, _ in queries):
            params = params.model_copy(update={"discovery_weights": {queries[0][0].name: 1.0}})
        filters = request.filters
        if params.exclude_purchased and not filters.exclude_purchased:
            # The bundle's blend was chosen with bought items left out (shoppers of this data
            # do not re-buy): lists that kept them would not be the lists evaluated.
            filters = replace(filters, exclude_purchased=True)
        purchased = state.purchased if filters.exclude_purchased else None

        def keep(items: np.ndarray) -> np.ndarray:
            mask = self.filter.mask(items, filters, purchased)
            return mask if anchor is None else mask & (items != anchor)

        cfg = self.config
        need = request.k * cfg.oversample

        def scan() -> np.ndarray:
            return self.scan.best(queries, filters, keep, need)

        share = self.filter.fraction(filters)
        cands = search_candidates(
            queries,
            request.k,
            keep,
            scan,
            cfg.oversample,
            cfg.max_candidates,
            share,
            prefer_scan=bool(filters.include_categories)
            and share * self.filter.catalog.n_items <= cfg.scan_below,
            users=rows,
        )
        use_trend = params.discovery_weights.get(TREND, 0.0) > 0
        if use_trend:
            # Trend is a discovery part of its own; its best items are candidates too.
            top = self.trend_order[:need]
            top = top[keep(top) & ~contains(np.sort(cands), top)]
            cands = np.concatenate([cands, top])
        item_item = self._item_item_scores(params, state)
        for scores in item_item.values():
            # Each item-item part ranks the catalog itself; its best items are candidates too.
            top = np.argpartition(-scores, min(need, scores.size - 1))[:need]
            top = top[(scores[top] > 0) & keep(top) & ~contains(np.sort(cands), top)]
            cands = np.concatenate([cands, top])
        repeat: np.ndarray | None = None
        if not filters.exclude_purchased and state.repeat_items.size:
            ok = keep(state.repeat_items)
            rep_items, rep_scores = state.repeat_items[ok], state.repeat_scores[ok]
            if rep_items.size:
                others = cands[~contains(np.sort(rep_items), cands)]
                cands = np.concatenate([rep_items, others])
                repeat = np.concatenate([rep_scores, np.zeros(others.size)])
        if cands.size == 0:
            return cands, np.empty(0), np.empty(0, dtype=np.int8), strategy
        disc = {src.name: src.scores(cands, q) for src, q in queries}
        if item_item:
            # Item-item candidates are far from this vector's best items, so the largest score
            # among the candidates can differ from the catalog's: ask the index for the latter.
            scales = {src.name: src.catalog_scale(q) for src, q in queries}
        else:
            scales = {name: float(np.max(np.abs(v))) for name, v in disc.items()}
        if use_trend:
            disc[TREND] = self.trend_score[cands]
            scales[TREND] = self.trend_scale
        for name, scores in item_item.items():
            # Exact scale: the part was scored over the whole catalog, as offline.
            disc[name] = scores[cands]
            scales[name] = float(np.max(np.abs(scores)))
        rep_scale = float(state.repeat_scores.max()) if repeat is not None else 0.0
        parts = blend_candidates(
            np.zeros(cands.size) if repeat is None else repeat, rep_scale, disc, scales, params
        )
        base = _BASE_REASON[strategy]
        reasons = np.full(cands.size, base, dtype=np.int8)
        # Without a trend part or a buy-again candidate both overrides below are all-False
        # (their left-hand sides are zero), so the comparisons are skipped.
        if use_trend:
            reasons[parts.trend > np.maximum(parts.personal, 0.0)] = _TRENDING
        if repeat is not None:
            buy_again = (parts.repeat > 0) & (
                parts.repeat > np.maximum(parts.personal, parts.trend)
            )
            reasons[buy_again] = _BUY_AGAIN
        return cands, parts.total, reasons, strategy
