"""Recommender on a bundle trained by the real trainer from the synthetic storefront.

The storefront's ground truth (each shopper's favourite categories) says what a good list looks
like, so these tests check answers, not just shapes: personalised lists must match planted
tastes better than trending does, a purchase logged a moment ago must change the list, and
so on. Real ALS, FAISS, two-tower ONNX graph and onnxruntime session throughout.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.bundle import Bundle, load_bundle
from recsys.config import ExperimentConfig, RecsysConfig
from recsys.fold_in import FoldIn
from recsys.recommender import Recommender
from recsys.types import REASON_CODES, Filters, RecentEvent, RecommendRequest, RequestContext
from training.data.synthetic import SyntheticStore
from training.trainer import train

# Small and quick, but every part of a real bundle (ALS, two-tower ONNX, indices) is there.
TRAIN_CONFIG = {
    "als": {"factors_grid": [16], "iterations": 5},
    "two_tower": {"epochs": 1, "dim": 16},
}


@pytest.fixture(scope="module")
def bundle(tiny_store: SyntheticStore, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    root = tmp_path_factory.mktemp("trained")
    cfg = root / "train.json"
    cfg.write_text(json.dumps(TRAIN_CONFIG))
    path = train(
        tiny_store.paths.events,
        tiny_store.paths.items,
        root / "bundles",
        config_path=cfg,
        seed=7,
        show_progress=False,
    )
    return load_bundle(Path(path))


@pytest.fixture(scope="module")
def rec(bundle: Bundle) -> Recommender:
    return Recommender(bundle, RecsysConfig())


def categories(bundle: Bundle) -> dict[str, str]:
    return dict(zip(bundle.items["item_id"], bundle.items["category"], strict=True))


def test_known_shoppers_get_their_planted_tastes(
    rec: Recommender, bundle: Bundle, tiny_store: SyntheticStore
) -> None:
    cat = categories(bundle)
    truth = tiny_store.truth_users.set_index("user_id")
    trending = rec.recommend(RecommendRequest(user_id="nobody-at-all", k=10))
    users = bundle.user_ids.tolist()[:80]
    personal_hits = trending_hits = 0
    for u in users:
        likes = {truth.at[u, "favourite_category"], truth.at[u, "second_category"]}
        out = rec.recommend(RecommendRequest(user_id=u, k=10))
        assert out.strategy == "trained_vector" and out.personalized
        assert out.model_version == bundle.manifest.bundle_id
        assert {it.reason for it in out.items} <= set(REASON_CODES)
        personal_hits += sum(cat[it.item_id] in likes for it in out.items)
        trending_hits += sum(cat[it.item_id] in likes for it in trending.items)
    assert personal_hits > 1.5 * trending_hits


def test_purchase_logged_now_changes_the_list(rec: Recommender, bundle: Bundle) -> None:
    user = str(bundle.user_ids[3])
    req = RecommendRequest(user_id=user, k=10)
    before = rec.recommend(req)
    now = bundle.manifest.data.reference_time + timedelta(hours=2)
    bought = before.items[0].item_id
    after = rec.recommend(req, [RecentEvent(bought, "purchase", now)])
    assert after.strategy == "fold_in"
    assert bought not in {it.item_id for it in after.items}
    assert [it.item_id for it in after.items] != [it.item_id for it in before.items]


def test_unknown_shopper_gets_trending_and_opt_out_the_same(
    rec: Recommender, bundle: Bundle
) -> None:
    fresh = rec.recommend(RecommendRequest(user_id="brand-new", k=10))
    assert fresh.strategy == "trending" and not fresh.personalized
    stock = dict(zip(bundle.items["item_id"], bundle.items["stock"], strict=True))
    top = bundle.popularity.query("scope == '*'").sort_values("rank")["item_index"].tolist()
    expected = [str(bundle.item_ids[i]) for i in top if not stock[str(bundle.item_ids[i])] <= 0]
    got = [it.item_id for it in fresh.items]
    assert set(got) <= set(expected[:20]) and got[0] == expected[0]
    known = str(bundle.user_ids[0])
    opted = rec.recommend(RecommendRequest(user_id=known, k=10), opted_out=True)
    assert opted.strategy == "non_personalized" and not opted.personalized
    assert [it.item_id for it in opted.items] == got


def test_filters_are_honoured(rec: Recommender, bundle: Bundle) -> None:
    category = dict(zip(bundle.items["item_id"], bundle.items["category"], strict=True))
    price = dict(zip(bundle.items["item_id"], bundle.items["base_price"], strict=True))
    stock = dict(zip(bundle.items["item_id"], bundle.items["stock"], strict=True))
    f = Filters(include_categories=("home",), min_price=5.0, max_price=60.0)
    for user in (str(bundle.user_ids[5]), "someone-new"):
        out = rec.recommend(RecommendRequest(user_id=user, k=8, filters=f))
        assert out.items
        for it in out.items:
            assert str(category[it.item_id]).startswith("home/")
            assert 5.0 <= float(price[it.item_id]) <= 60.0
            assert not stock[it.item_id] <= 0


def test_session_clicks_personalise_a_new_shopper(rec: Recommender, bundle: Bundle) -> None:
    cat = categories(bundle)
    shoes = [i for i, c in cat.items() if c == "fashion/shoes"][:3]
    now = bundle.manifest.data.reference_time + timedelta(minutes=5)
    clicks = [RecentEvent(i, "click", now + timedelta(minutes=j)) for j, i in enumerate(shoes)]
    cfg = RecsysConfig(experiment=ExperimentConfig(split={"two_tower": 1.0}))
    tower_rec = Recommender(bundle, cfg)
    out = tower_rec.recommend(RecommendRequest(user_id="session-only", k=10), clicks)
    assert out.variant == "two_tower" and out.strategy == "session_tower" and out.personalized
    trending = tower_rec.recommend(RecommendRequest(user_id="session-only", k=10))
    in_fashion = sum(cat[it.item_id].startswith("fashion/") for it in out.items)
    assert in_fashion > sum(cat[it.item_id].startswith("fashion/") for it in trending.items)


def test_similar_items_share_the_category(rec: Recommender, bundle: Bundle) -> None:
    cat = categories(bundle)
    counts = np.array(list(bundle.items["category"].value_counts()))
    chance = float(((counts / counts.sum()) ** 2).sum())
    same = total = 0
    for item_id in bundle.items["item_id"].tolist()[:60]:
        sims = rec.similar_items(item_id, k=5, filters=Filters(in_stock_only=False))
        same += sum(cat[s.item_id] == cat[item_id] for s in sims)
        total += len(sims)
    assert same / total > 2 * chance


def test_product_page_context(rec: Recommender, bundle: Bundle) -> None:
    anchor = str(bundle.item_ids[0])
    top = str(bundle.items["category"].iloc[0]).split("/")[0]
    out = rec.recommend(
        RecommendRequest(user_id="visitor", k=5, context=RequestContext(item_id=anchor))
    )
    assert anchor not in {it.item_id for it in out.items}
    assert out.items[0].reason == "trending_in_category"
    assert str(bundle.items.set_index("item_id").at[out.items[0].item_id, "category"]).startswith(
        top
    )


def test_fold_in_of_training_rows_reproduces_trained_vectors(bundle: Bundle) -> None:
    """The request-time solve on a shopper's own training rows gives their trained vector."""
    fold = FoldIn(
        bundle.als_item_factors,
        bundle.manifest.confidence,
        bundle.items["bm25_idf"].to_numpy(np.float32),
    )
    inter = bundle.interactions
    for u in range(0, len(bundle.user_ids), 15):
        rows = inter[inter["user_index"] == u]
        got = fold.vector(rows["item_index"].to_numpy(), rows["confidence"].to_numpy())
        want = bundle.als_user_factors[u]
        np.testing.assert_allclose(got, want, atol=2e-3 * max(1.0, float(np.abs(want).max())))


def test_trainer_ranks_every_shopper_offline_exactly(bundle: Bundle) -> None:
    m = bundle.manifest
    assert m.als.user_candidates is not None and m.two_tower is not None
    assert m.two_tower.user_candidates is not None
    pairs = [
        (bundle.als_user_candidates, bundle.als_item_factors, bundle.als_user_factors),
        (
            bundle.two_tower_user_candidates,
            bundle.two_tower_item_vectors,
            bundle.two_tower_user_vectors,
        ),
    ]
    for table, items, users in pairs:
        assert table is not None and items is not None and users is not None
        assert table.shape == (len(bundle.user_ids), min(160, len(bundle.item_ids)))
        scores = users.astype(np.float64) @ items.astype(np.float64).T
        for u in range(0, len(bundle.user_ids), 97):
            best = np.sort(scores[u])[::-1][: table.shape[1]]
            np.testing.assert_allclose(scores[u, table[u]], best, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["default", "als", "two_tower"])
def test_offline_ranked_candidates_serve_the_lists_the_index_serves(
    bundle: Bundle, variant: str
) -> None:
    # The tiny catalogue has an exact index, so both paths must give the same lists; on a
    # large catalogue the table is the exact answer the HNSW graph approximates.
    cfg = RecsysConfig(experiment=ExperimentConfig(split={variant: 1.0}))
    with_table = Recommender(bundle, cfg)
    bare = Recommender(bundle.without_user_candidates(), cfg)
    requests = [
        RecommendRequest(user_id=str(u), k=k, filters=f)
        for u in bundle.user_ids[::19]
        for k, f in ((20, Filters()), (7, Filters(exclude_purchased=False, max_price=40.0)))
    ]
    assert len(requests) >= 20
    for req in requests:
        got, want = with_table.recommend(req), bare.recommend(req)
        assert got.strategy == want.strategy == "trained_vector"
        assert [(i.item_id, i.reason) for i in got.items] == [
            (i.item_id, i.reason) for i in want.items
        ]
        np.testing.assert_allclose(
            [i.score for i in got.items], [i.score for i in want.items], rtol=1e-6
        )


def test_the_table_answers_trained_vectors_and_nothing_else(bundle: Bundle) -> None:
    # A deliberately wrong table (every row is the next user's): the lists it answers change,
    # while fold-in and session-tower lists, whose vectors are new, must not.
    assert bundle.als_user_candidates is not None
    assert bundle.two_tower_user_candidates is not None
    wrong = replace(
        bundle,
        als_user_candidates=np.roll(bundle.als_user_candidates, 1, axis=0),
        two_tower_user_candidates=np.roll(bundle.two_tower_user_candidates, 1, axis=0),
    )
    bare = bundle.without_user_candidates()
    users = [str(u) for u in bundle.user_ids[::19]]
    now = bundle.manifest.data.reference_time + timedelta(minutes=5)
    item_ids = [str(i) for i in bundle.item_ids]

    def ids(rec: Recommender, user: str, events: list[RecentEvent]) -> tuple[str, list[str]]:
        out = rec.recommend(RecommendRequest(user_id=user, k=20), events)
        return out.strategy, [it.item_id for it in out.items]

    for variant, event_type, fresh in (
        ("als", "purchase", "fold_in"),
        ("two_tower", "view", "session_tower"),
    ):
        cfg = RecsysConfig(experiment=ExperimentConfig(split={variant: 1.0}))
        with_wrong, without = Recommender(wrong, cfg), Recommender(bare, cfg)
        changed = 0
        for n, user in enumerate(users):
            strategy, got = ids(with_wrong, user, [])
            assert strategy == "trained_vector"
            changed += got != ids(without, user, [])[1]
            events = [
                RecentEvent(item_ids[(7 * n + j) % len(item_ids)], event_type, now)
                for j in range(3)
            ]
            assert ids(with_wrong, user, events) == ids(without, user, events)
            assert ids(without, user, events)[0] == fresh
        assert changed >= len(users) // 2, (variant, changed)


def test_item_item_part_is_served_as_it_was_evaluated(bundle: Bundle) -> None:
    # The blend with an EASE part, served for trained shoppers, ranks the eligible catalog
    # exactly as the offline blend (recsys.hybrid.blend_scores) over the whole catalog does.
    from recsys.hybrid import HybridParams, blend_scores
    from training.item_models import ease_matrix

    n_users, n_items = len(bundle.user_ids), len(bundle.item_ids)
    inter = bundle.interactions[bundle.interactions["purchases"] > 0]
    counts = sp.csr_matrix(
        (
            inter["purchases"].to_numpy(np.float32),
            (inter["user_index"].to_numpy(), inter["item_index"].to_numpy()),
        ),
        shape=(n_users, n_items),
    )
    ease = ease_matrix(counts, 50.0, top_k=30)
    blend = HybridParams(
        repeat_weight=0.3,
        repeat_half_life_days=bundle.manifest.hybrid.repeat_half_life_days,
        discovery_weights={"als": 0.5, "ease": 0.5},
    )
    served = replace(
        bundle.without_user_candidates(),
        manifest=bundle.manifest.model_copy(update={"hybrid": blend}),
        item_item={"ease": ease},
    )
    rec = Recommender(served, RecsysConfig(diversity_lambda=0.0))
    stock = bundle.items["stock"]
    in_stock = (stock.isna() | (stock > 0)).to_numpy(dtype=bool)
    bought = (counts > 0).astype(np.float32).tocsr()
    checked = 0
    for u in range(0, n_users, 23):
        if not bought[u].nnz:
            continue
        disc = {
            "als": bundle.als_user_factors[u] @ bundle.als_item_factors.T,
            "ease": np.asarray((bought[u] @ ease).todense()).ravel(),
        }
        scores = blend_scores(bundle.repeat_vector(u), disc, blend)
        eligible = in_stock & ~(bought[u].toarray().ravel() > 0)
        order = [i for i in np.argsort(-scores, kind="stable") if eligible[i]][:10]
        out = rec.recommend(RecommendRequest(user_id=str(bundle.user_ids[u]), k=10))
        assert [it.item_id for it in out.items] == [str(bundle.item_ids[i]) for i in order]
        checked += 1
    assert checked >= 5


def test_a_blend_chosen_without_rebuys_never_serves_bought_items(bundle: Bundle) -> None:
    blend = bundle.manifest.hybrid.model_copy(update={"exclude_purchased": True})
    served = replace(bundle, manifest=bundle.manifest.model_copy(update={"hybrid": blend}))
    rec = Recommender(served, RecsysConfig())
    plain = Recommender(bundle, RecsysConfig())
    kept_before = 0
    for u in range(0, len(bundle.user_ids), 17):
        bought = {str(bundle.item_ids[i]) for i in bundle.purchased(u)[0]}
        req = RecommendRequest(
            user_id=str(bundle.user_ids[u]), k=10, filters=Filters(exclude_purchased=False)
        )
        assert not bought & {it.item_id for it in rec.recommend(req).items}
        kept_before += len(bought & {it.item_id for it in plain.recommend(req).items})
    # Without the flag the same requests do list bought items (buy-again).
    assert kept_before > 0
