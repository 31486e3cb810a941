"""Recommender on a small bundle with planted structure, written and read through the real
bundle writer/reader and real FAISS indexes.

Items live in four top-level categories whose ALS factors point along four axes; each shopper
has rows only in a favourite category, and the trained user vectors are the exact ALS solve of
those rows. So the right answers are known: a shopper's list should come from their favourite
category, a fresh purchase elsewhere should pull the list toward it, and so on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairshelf.errors import InvalidArgument, NotFound
from recsys.bundle import (
    ALS_INDEX,
    ALS_ITEM_FACTORS,
    ALS_USER_FACTORS,
    INTERACTIONS,
    ITEMS,
    POPULARITY,
    USERS,
    AlsInfo,
    BundleWriter,
    DataSummary,
    IndexInfo,
    Manifest,
    load_bundle,
)
from recsys.confidence import ConfidenceParams, bm25_idf, transform_weights
from recsys.config import ExperimentConfig, RecsysConfig
from recsys.fold_in import FoldIn
from recsys.hybrid import HybridParams
from recsys.index import IndexSettings, VectorIndex
from recsys.recommender import Recommender
from recsys.types import Filters, RecentEvent, RecommendRequest, RequestContext

N_CAT, PER_CAT, N_USERS, F = 4, 40, 60, 8
REF = datetime(2026, 6, 1, tzinfo=UTC)


def cat_of(item: int) -> int:
    return item // PER_CAT


def write_bundle(root: Path, hnsw: bool = False) -> Path:
    rng = np.random.default_rng(11)
    n_items = N_CAT * PER_CAT
    y = rng.normal(scale=0.15, size=(n_items, F)).astype(np.float32)
    for i in range(n_items):
        y[i, cat_of(i)] += 1.0
    items = pd.DataFrame(
        {
            "item_id": [f"sku-{i}" for i in range(n_items)],
            "title": [f"item {i}" for i in range(n_items)],
            "category": [f"c{cat_of(i)}/s{i % 2}" for i in range(n_items)],
            "base_price": (5.0 + (np.arange(n_items) % 10) * 3.0),
            "unit_cost": 2.0,
            "stock": pd.array([0 if i % 13 == 0 else 10 for i in range(n_items)], dtype="Int64"),
            "price_band": (np.arange(n_items) % 4).astype(np.int8),
            "trend_score": rng.uniform(0, 1, n_items).astype(np.float32),
        }
    )
    rows = []
    for u in range(N_USERS):
        fav = u % N_CAT
        picks = rng.choice(np.arange(fav * PER_CAT, (fav + 1) * PER_CAT), size=6, replace=False)
        for j, i in enumerate(picks):
            rows.append((u, int(i), float(rng.uniform(1, 8)), 1 if j < 2 else 0))
    inter = pd.DataFrame(rows, columns=["user_index", "item_index", "confidence", "purchases"])
    idf = bm25_idf(inter["item_index"].to_numpy(), N_USERS, n_items)
    items["bm25_idf"] = idf
    params = ConfidenceParams(
        event_weights={"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0},
        bm25_avg_length=float(inter.groupby("user_index")["confidence"].sum().mean()),
    )
    inter["weight"] = transform_weights(
        inter["user_index"].to_numpy(),
        inter["item_index"].to_numpy(),
        inter["confidence"].to_numpy(),
        params,
        idf,
    )
    inter["repeat_score"] = np.where(inter["purchases"] > 0, 0.5, 0.0).astype(np.float32)
    inter["last_purchase"] = pd.Series(
        [pd.Timestamp(REF) if p else pd.NaT for p in inter["purchases"]],
        dtype="datetime64[ns, UTC]",
    )
    fold = FoldIn(y, params, idf)
    users_f = np.stack(
        [
            fold.vector(g["item_index"].to_numpy(), g["confidence"].to_numpy())
            for _, g in inter.groupby("user_index")
        ]
    )
    trend = items["trend_score"].to_numpy()
    pop_rows = [("*", r, int(i), float(trend[i])) for r, i in enumerate(np.argsort(-trend)[:30])]
    for c in range(N_CAT):
        members = np.arange(c * PER_CAT, (c + 1) * PER_CAT)
        best = members[np.argsort(-trend[members])][:10]
        pop_rows += [(f"c{c}", r, int(i), float(trend[i])) for r, i in enumerate(best)]
    pop = pd.DataFrame(pop_rows, columns=["scope", "rank", "item_index", "score"])
    writer = BundleWriter(root, "planted-1")
    writer.save_frame(ITEMS, items)
    writer.save_frame(USERS, pd.DataFrame({"user_id": [f"u{u}" for u in range(N_USERS)]}))
    writer.save_frame(INTERACTIONS, inter)
    writer.save_frame(POPULARITY, pop)
    writer.save_array(ALS_ITEM_FACTORS, y)
    writer.save_array(ALS_USER_FACTORS, users_f)
    index = VectorIndex.build(y, IndexSettings(exact_below=1) if hnsw else None)
    writer.save_index(ALS_INDEX, index)
    manifest = Manifest(
        bundle_id="planted-1",
        created_at=REF,
        model="hybrid",
        seed=11,
        data_fingerprint="0" * 64,
        data=DataSummary(
            events_path="-",
            items_path="-",
            n_events=len(inter),
            n_users=N_USERS,
            n_items=n_items,
            reference_time=REF,
        ),
        config={},
        library_versions={},
        confidence=params,
        hybrid=HybridParams(repeat_weight=0.5),
        als=AlsInfo(
            factors=F,
            iterations=1,
            index=IndexInfo(file=ALS_INDEX, kind=index.kind, dim=F, size=n_items, recall_at_20=1.0),
        ),
    )
    return writer.commit(manifest)


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    path = write_bundle(tmp_path_factory.mktemp("bundles"))
    return Recommender(load_bundle(path), RecsysConfig(diversity_lambda=0.0))


def cats(result_items: object) -> list[int]:
    return [int(it.item_id.split("-")[1]) // PER_CAT for it in result_items]  # type: ignore[attr-defined]


def at(minutes: int) -> datetime:
    return REF + timedelta(days=1, minutes=minutes)


def test_known_user_gets_favourite_category(rec: Recommender) -> None:
    for u in range(8):
        out = rec.recommend(RecommendRequest(user_id=f"u{u}", k=10))
        assert out.strategy == "trained_vector" and out.personalized
        assert out.model_version == "planted-1" and out.variant == "default"
        assert cats(out.items).count(u % N_CAT) == 10
        assert {it.reason for it in out.items} == {"matches_profile"}


def test_purchases_are_excluded_and_fresh_purchase_moves_the_list(rec: Recommender) -> None:
    req = RecommendRequest(user_id="u1", k=10)
    before = rec.recommend(req)
    bought = set(rec.bundle.item_ids[rec.bundle.purchased(1)[0]].tolist())
    assert bought and not bought & {it.item_id for it in before.items}
    # Shopper u1 (category 1) buys three items of category 3 just now.
    events = [RecentEvent(f"sku-{3 * PER_CAT + j}", "purchase", at(j)) for j in range(3)]
    after = rec.recommend(req, events)
    assert after.strategy == "fold_in"
    ids = {it.item_id for it in after.items}
    assert not ids & {e.item_id for e in events}
    assert cats(after.items).count(3) > cats(before.items).count(3)
    assert {it.reason for it in after.items} == {"recent_activity"}


def test_unknown_user_gets_trending_and_opt_out_matches_it(rec: Recommender) -> None:
    fresh = rec.recommend(RecommendRequest(user_id="never-seen", k=10))
    assert fresh.strategy == "trending" and not fresh.personalized
    assert all(it.reason == "trending" for it in fresh.items)
    top = rec.bundle.popularity.query("scope == '*'").sort_values("rank")["item_index"]
    in_stock = [i for i in top.tolist() if i % 13 != 0]
    assert [it.item_id for it in fresh.items] == [f"sku-{i}" for i in in_stock[:10]]
    for request, flag in [
        (RecommendRequest(user_id="u2", k=10), True),
        (RecommendRequest(user_id="u2", k=10, personalized=False), False),
    ]:
        out = rec.recommend(request, [RecentEvent("sku-5", "purchase", at(0))], opted_out=flag)
        assert out.strategy == "non_personalized" and not out.personalized
        assert [it.item_id for it in out.items] == [it.item_id for it in fresh.items]


def test_session_events_personalise_an_unknown_shopper(rec: Recommender) -> None:
    events = [RecentEvent(f"sku-{2 * PER_CAT + j}", "click", at(j)) for j in range(2)]
    out = rec.recommend(RecommendRequest(user_id="new-shopper", k=10), events)
    assert out.strategy == "fold_in" and out.personalized
    assert cats(out.items).count(2) >= 8
    only_impressions = [RecentEvent("sku-3", "impression", at(0))]
    assert (
        rec.recommend(RecommendRequest(user_id="n2", k=5), only_impressions).strategy == "trending"
    )


def test_context_category_trending(rec: Recommender) -> None:
    out = rec.recommend(
        RecommendRequest(user_id="nobody", k=12, context=RequestContext(category="c1/s0"))
    )
    assert [it.reason for it in out.items[:9]] == ["trending_in_category"] * 9
    assert cats(out.items[:9]) == [1] * 9
    page = rec.recommend(
        RecommendRequest(user_id="nobody", k=5, context=RequestContext(item_id="sku-45"))
    )
    assert "sku-45" not in {it.item_id for it in page.items}
    assert cats(page.items) == [1] * 5


@pytest.mark.parametrize("user", ["u0", "nobody"])
def test_filters_are_honoured(rec: Recommender, user: str) -> None:
    f = Filters(include_categories=("c2",), min_price=10.0, max_price=20.0)
    out = rec.recommend(RecommendRequest(user_id=user, k=15, filters=f))
    eligible = [
        i
        for i in range(2 * PER_CAT, 3 * PER_CAT)
        if i % 13 != 0 and 10.0 <= 5.0 + (i % 10) * 3.0 <= 20.0
    ]
    assert len(out.items) == min(15, len(eligible))
    assert {int(it.item_id[4:]) for it in out.items} <= set(eligible)
    empty = rec.recommend(
        RecommendRequest(user_id=user, k=5, filters=Filters(include_categories=("zzz",)))
    )
    assert empty.items == ()


def test_buy_again_when_purchases_allowed(rec: Recommender) -> None:
    req = RecommendRequest(user_id="u1", k=10, filters=Filters(exclude_purchased=False))
    out = rec.recommend(req)
    bought = set(rec.bundle.item_ids[rec.bundle.purchased(1)[0]].tolist())
    reasons = {it.item_id: it.reason for it in out.items}
    assert bought <= set(reasons)
    assert all(reasons[i] == "buy_again" for i in bought)


def test_impression_fatigue_demotes_ignored_item(rec: Recommender) -> None:
    req = RecommendRequest(user_id="u3", k=10)
    first = rec.recommend(req).items[0].item_id
    shown = [RecentEvent(first, "impression", at(j)) for j in range(6)]
    tired = rec.recommend(req, shown)
    assert tired.items[0].item_id != first
    clicked = [*shown, RecentEvent(first, "click", at(10))]
    assert rec.recommend(req, clicked).items[0].item_id == first


def test_boosts_and_diversity(tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(tmp_path))
    boosted = Recommender(
        bundle, RecsysConfig(diversity_lambda=0.0, category_boosts={"c1/s1": 2.0})
    )
    out = boosted.recommend(RecommendRequest(user_id="u1", k=6))
    # Boosts re-rank retrieved candidates: u1's list is category 1, now its s1 half first.
    assert [it.reason for it in out.items] == ["promoted"] * 6
    assert all(int(it.item_id[4:]) % 2 == 1 for it in out.items)
    plain = Recommender(bundle, RecsysConfig(diversity_lambda=0.0))
    assert plain.recommend(RecommendRequest(user_id="u1", k=6)).items != out.items
    capped = Recommender(bundle, RecsysConfig(diversity_lambda=0.0, category_cap=2))
    mixed = capped.recommend(RecommendRequest(user_id="anon", k=8))
    assert sorted(cats(mixed.items)) == [0, 0, 1, 1, 2, 2, 3, 3]
    mmr = Recommender(bundle, RecsysConfig(diversity_lambda=5.0))
    spread = mmr.recommend(RecommendRequest(user_id="anon", k=4))
    assert sorted(cats(spread.items)) == [0, 1, 2, 3]


def test_variants_are_deterministic(tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(tmp_path))
    cfg = RecsysConfig(experiment=ExperimentConfig(split={"als": 0.5, "two_tower": 0.5}))
    a, b = Recommender(bundle, cfg), Recommender(bundle, cfg)
    got = [a.recommend(RecommendRequest(user_id=f"u{u}", k=3)).variant for u in range(20)]
    assert got == [b.variant_of(f"u{u}") for u in range(20)]
    assert set(got) == {"als", "two_tower"}


def test_similar_items(rec: Recommender) -> None:
    sims = rec.similar_items("sku-50", k=10)
    assert len(sims) == 10 and "sku-50" not in {s.item_id for s in sims}
    assert cats(sims).count(1) == 10
    assert all(s.reason == "similar_item" for s in sims)
    assert [s.score for s in sims] == sorted((s.score for s in sims), reverse=True)
    with pytest.raises(NotFound):
        rec.similar_items("sku-nope", k=5)
    with pytest.raises(InvalidArgument):
        rec.similar_items("sku-1", k=0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    user=st.sampled_from(["u0", "u7", "stranger"]),
    k=st.integers(1, 60),
    include=st.lists(st.sampled_from(["c0", "c1/s0", "c2/s1", "c3", "zz"]), max_size=2),
    exclude=st.lists(st.sampled_from(["c0/s1", "c1", "c3/s0"]), max_size=2),
    lo=st.one_of(st.none(), st.floats(0, 30)),
    width=st.one_of(st.none(), st.floats(0, 40)),
    in_stock=st.booleans(),
    bought=st.booleans(),
)
def test_filters_never_violated_and_lists_full_when_possible(
    rec: Recommender,
    user: str,
    k: int,
    include: list[str],
    exclude: list[str],
    lo: float | None,
    width: float | None,
    in_stock: bool,
    bought: bool,
) -> None:
    hi = None if width is None else (lo or 0.0) + width
    f = Filters(
        exclude_purchased=bought,
        in_stock_only=in_stock,
        include_categories=tuple(include),
        exclude_categories=tuple(exclude),
        min_price=lo,
        max_price=hi,
    )
    out = rec.recommend(RecommendRequest(user_id=user, k=k, filters=f))
    uidx = rec.personal.user_position.get(user)
    purchased = (
        set(rec.bundle.purchased(uidx)[0].tolist()) if (uidx is not None and bought) else set()
    )

    def ok(i: int) -> bool:
        cat = f"c{cat_of(i)}/s{i % 2}"
        price = 5.0 + (i % 10) * 3.0
        return (
            (not include or any(cat == p or cat.startswith(p + "/") for p in include))
            and not any(cat == p or cat.startswith(p + "/") for p in exclude)
            and (lo is None or price >= lo)
            and (hi is None or price <= hi)
            and (not in_stock or i % 13 != 0)
            and i not in purchased
        )

    got = [int(it.item_id[4:]) for it in out.items]
    assert len(got) == len(set(got))
    assert all(ok(i) for i in got)
    assert len(got) == min(k, sum(ok(i) for i in range(N_CAT * PER_CAT)))


def test_hnsw_bundle_and_ef_search_override(tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(tmp_path, hnsw=True))
    assert bundle.als_index.kind == "hnsw"
    rec = Recommender(bundle, RecsysConfig(diversity_lambda=0.0, ef_search=16))
    index = bundle.als_index.index
    assert isinstance(index, faiss.IndexHNSW) and index.hnsw.efSearch == 16
    for u in range(4):
        out = rec.recommend(RecommendRequest(user_id=f"u{u}", k=10))
        assert cats(out.items).count(u % N_CAT) == 10
