"""recsys.index: exact below the threshold, HNSW above, recall measured against exact, the
query beam chosen on some queries and the recall measured on others."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest
import scipy.sparse as sp

from fairshelf.errors import InvalidArgument
from recsys.index import IndexSettings, VectorIndex, _levels_by_norm
from recsys.index_tuning import (
    EF_LADDER,
    build_tuned,
    recall_against_exact,
    split_queries,
    tune_ef_search,
)

N_ALS = 20_000
# Defaults except the size threshold, so that the default HNSW settings are what is tested.
ALS_SETTINGS = IndexSettings(exact_below=N_ALS // 2)


def als_factors(n_items: int, n_users: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """ALS item and user factors (64) fitted with implicit on a skewed random purchase matrix.

    Shoppers buy 10 items from two favourite categories, mostly each category's first
    (popular) items, which gives ALS factors their very uneven norms: the case where an
    inner-product HNSW graph loses recall.
    """
    from implicit.cpu.als import AlternatingLeastSquares

    rng = np.random.default_rng(seed)
    n_cats, per_user = 100, 10
    cat = rng.integers(0, n_cats, n_items)
    order = np.argsort(cat, kind="stable")
    bounds = np.searchsorted(cat[order], np.arange(n_cats + 1))
    favs = rng.integers(0, n_cats, (n_users, 2))
    pick = favs[np.arange(n_users)[:, None], rng.integers(0, 2, (n_users, per_user))]
    lo, hi = bounds[pick], bounds[pick + 1]
    pos = lo + ((rng.random((n_users, per_user)) ** 2.5) * (hi - lo)).astype(np.int64)
    items = order[np.minimum(pos, hi - 1)].ravel()
    users = np.repeat(np.arange(n_users), per_user)
    weights = rng.uniform(1.0, 6.0, len(items)).astype(np.float32)
    matrix = sp.csr_matrix((weights, (users, items)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    als = AlternatingLeastSquares(factors=64, iterations=4, regularization=0.1, random_state=seed)
    als.fit(matrix, show_progress=False)
    y = np.ascontiguousarray(als.item_factors, dtype=np.float32)
    x = np.ascontiguousarray(als.user_factors, dtype=np.float32)
    return y, x[np.abs(x).sum(axis=1) > 0]


@pytest.fixture(scope="module")
def als_users() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item factors, user factors, indices of 400 sampled users), fitted once."""
    y, x = als_factors(N_ALS, N_ALS, seed=0)
    return y, x, np.random.default_rng(1).choice(len(x), 400, replace=False)


@pytest.fixture(scope="module")
def als_index(
    als_users: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    """(HNSW index, item factors, 400 sampled user factors), built once for the module."""
    y, x, sample = als_users
    queries = x[sample]
    # A single-threaded build is reproducible (parallel HNSW insertion is not), so the recall
    # bar is tested on the same graph every run.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        index = VectorIndex.build(y, ALS_SETTINGS)
    finally:
        faiss.omp_set_num_threads(threads)
    return index, y, queries


def test_flat_index_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vec = rng.normal(size=(300, 8)).astype(np.float32)
    q = rng.normal(size=(5, 8)).astype(np.float32)
    index = VectorIndex.build(vec)
    assert index.kind == "flat"
    ids, scores = index.search(q, 10)
    expected = np.argsort(-(q @ vec.T), axis=1)[:, :10]
    assert np.array_equal(ids, expected)
    assert np.allclose(scores, np.take_along_axis(q @ vec.T, expected, axis=1), atol=1e-5)
    index.save(tmp_path / "x.faiss")
    again = VectorIndex.load(tmp_path / "x.faiss")
    assert again.kind == "flat" and np.array_equal(again.search(q, 10)[0], ids)


def test_hnsw_above_threshold_keeps_recall(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vec = rng.normal(size=(3000, 16)).astype(np.float32)
    q = rng.normal(size=(200, 16)).astype(np.float32)
    index = VectorIndex.build(vec, IndexSettings(exact_below=1000))
    assert index.kind == "hnsw"
    assert recall_against_exact(index, vec, q, 20) >= 0.99
    index.save(tmp_path / "h.faiss")
    assert VectorIndex.load(tmp_path / "h.faiss").kind == "hnsw"


def test_hnsw_recall_on_als_factors(als_index: tuple[VectorIndex, np.ndarray, np.ndarray]) -> None:
    index, y, queries = als_index
    norms = np.linalg.norm(y, axis=1)
    # The data is what the test claims: norms spread over two orders of magnitude.
    assert norms.max() > 10 * np.median(norms)
    assert index.kind == "hnsw" and index.size == N_ALS
    assert recall_against_exact(index, y, queries, 20) >= 0.99


def test_hnsw_scores_are_exact_inner_products(
    als_index: tuple[VectorIndex, np.ndarray, np.ndarray],
) -> None:
    index, y, queries = als_index
    ids, scores = index.search(queries[:50], 20)
    assert ids.dtype == np.int64 and scores.dtype == np.float32 and ids.shape == (50, 20)
    assert np.all(ids >= 0) and all(len(set(row)) == 20 for row in ids.tolist())
    exact = np.einsum("qd,qkd->qk", queries[:50], y[ids])
    assert np.allclose(scores, exact, rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(scores, axis=1) <= 0)
    # A single (dim,) query and the raw FAISS call on the request path agree with search().
    one_ids, one_scores = index.search(queries[0], 20)
    assert np.array_equal(one_ids[0], ids[0]) and np.allclose(one_scores[0], scores[0])
    _, raw_ids = index.index.search(queries[:1], 20)
    assert np.array_equal(raw_ids[0], ids[0])


def test_hnsw_save_load_round_trip(
    tmp_path: Path, als_index: tuple[VectorIndex, np.ndarray, np.ndarray]
) -> None:
    index, _, queries = als_index
    index.save(tmp_path / "als.faiss")
    again = VectorIndex.load(tmp_path / "als.faiss")
    assert again.kind == "hnsw" and again.dim == 64 and again.size == N_ALS
    assert isinstance(again.index, faiss.IndexHNSWFlat)
    assert again.index.metric_type == faiss.METRIC_INNER_PRODUCT
    assert again.index.hnsw.efSearch == ALS_SETTINGS.ef_search
    ids, scores = index.search(queries, 20)
    ids2, scores2 = again.search(queries, 20)
    assert np.array_equal(ids, ids2) and np.array_equal(scores, scores2)


def test_index_files_with_an_inner_product_graph_still_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    vec = rng.normal(size=(2000, 8)).astype(np.float32)
    q = rng.normal(size=(20, 8)).astype(np.float32)
    old = faiss.IndexHNSWFlat(8, 16, faiss.METRIC_INNER_PRODUCT)
    old.hnsw.efSearch = 64
    old.add(vec)
    faiss.write_index(old, str(tmp_path / "old.faiss"))
    loaded = VectorIndex.load(tmp_path / "old.faiss")
    assert loaded.kind == "hnsw" and isinstance(loaded.index, faiss.IndexHNSWFlat)
    assert loaded.index.hnsw.efSearch == 64
    ids, scores = loaded.search(q, 5)
    expected_scores, expected_ids = old.search(q, 5)
    assert np.array_equal(ids, expected_ids) and np.array_equal(scores, expected_scores)


def test_levels_follow_norms() -> None:
    norms = np.random.default_rng(5).lognormal(size=5000)
    levels = _levels_by_norm(norms, 8)
    # Usual HNSW layer sizes (n / m**l items reach layer l) ...
    assert [int(np.sum(levels >= lvl)) for lvl in range(1, 6)] == [625, 79, 10, 2, 0]
    # ... filled from the largest norms down.
    order = np.argsort(-norms)
    assert np.all(np.diff(levels[order]) <= 0)
    assert _levels_by_norm(np.ones(5), 8).tolist() == [0, 0, 0, 0, 0]


def test_bad_inputs_are_refused() -> None:
    index = VectorIndex.build(np.eye(4, dtype=np.float32))
    with pytest.raises(InvalidArgument):
        index.search(np.ones(4, dtype=np.float32), 0)
    with pytest.raises(InvalidArgument):
        index.search(np.ones(3, dtype=np.float32), 2)
    with pytest.raises(InvalidArgument):
        VectorIndex.build(np.array([[np.nan, 1.0]], dtype=np.float32))
    ids, _ = index.search(np.array([0, 0, 1, 0], dtype=np.float32), 50)
    assert ids.shape == (1, 4) and ids[0, 0] == 2


def gaussian(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


@pytest.fixture(scope="module")
def small_hnsw() -> tuple[VectorIndex, np.ndarray]:
    """(HNSW index over 3,000 gaussian vectors of 16 dimensions, the vectors)."""
    vec = gaussian(3000, 16, 6)
    return VectorIndex.build(vec, IndexSettings(exact_below=1000)), vec


def test_tuning_takes_the_smallest_beam_meeting_the_target(
    small_hnsw: tuple[VectorIndex, np.ndarray],
) -> None:
    index, vec = small_hnsw
    q = gaussian(300, 16, 7)
    # A goal above 1 is never reached, so every beam up to the ceiling is tried.
    full = tune_ef_search(index, vec, q, 1.0, margin=0.5, ceiling=256)
    recalls = dict(full.tried)
    assert [ef for ef, _ in full.tried] == [ef for ef in EF_LADDER if ef <= 256]
    # Easy target: the first beam that reaches it, which is below the ceiling.
    target = recalls[64] - 1e-9
    easy = tune_ef_search(index, vec, q, target, ceiling=256)
    assert easy.met and easy.ef_search <= 64 and easy.recall >= target
    assert all(r < target for ef, r in easy.tried if ef < easy.ef_search)
    assert index.ef_search == easy.ef_search
    # The margin is added to the target: 64 no longer reaches target + margin.
    wider = tune_ef_search(index, vec, q, target, margin=1e-3, ceiling=256)
    assert wider.ef_search > 64
    # Unreachable target: the ceiling, reported as not met.
    hard = tune_ef_search(index, vec, q, 1.0, margin=0.5, ceiling=100)
    assert not hard.met and hard.ef_search == 100 == index.ef_search
    assert [ef for ef, _ in hard.tried][-2:] == [96, 100]


def test_tuned_recall_is_measured_on_held_out_queries(
    tmp_path: Path, small_hnsw: tuple[VectorIndex, np.ndarray]
) -> None:
    _, vec = small_hnsw
    users = gaussian(900, 16, 8)
    users[:50] = 0.0  # users without interactions are not sampled
    settings = IndexSettings(exact_below=1000, recall_target=0.95, recall_margin=0.01)
    tuned = build_tuned(vec, users, settings, seed=3, calibration=400, held_out=300)
    cal, hold = split_queries(users, 3, 400, 300)
    assert (tuned.n_calibration, tuned.n_held_out) == (400, 300) == (len(cal), len(hold))
    assert np.all(np.any(cal != 0, axis=1)) and np.all(np.any(hold != 0, axis=1))
    rows = {r.tobytes() for r in cal}
    assert not any(r.tobytes() in rows for r in hold)
    index = tuned.index
    assert tuned.choice is not None and tuned.choice.met
    assert index.ef_search == tuned.choice.ef_search < settings.ef_search
    # The choice was made on the calibration queries, the recall recorded on the others.
    assert tuned.choice.recall == recall_against_exact(index, vec, cal, 20) >= 0.96
    assert tuned.recall_at_20 == recall_against_exact(index, vec, hold, 20)
    # The chosen beam is saved with the index.
    index.save(tmp_path / "t.faiss")
    assert VectorIndex.load(tmp_path / "t.faiss").ef_search == tuned.choice.ef_search


def test_flat_index_is_not_tuned() -> None:
    vec = gaussian(300, 8, 9)
    tuned = build_tuned(vec, gaussian(100, 8, 10))
    assert tuned.index.kind == "flat" and tuned.index.ef_search is None
    assert tuned.choice is None and tuned.recall_at_20 == 1.0
    with pytest.raises(InvalidArgument, match="HNSW"):
        tune_ef_search(tuned.index, vec, vec[:10], 0.99)
    # No usable user vector: the items stand in.
    assert build_tuned(vec, np.zeros((5, 8), np.float32)).n_held_out == 150


def test_tuned_beam_meets_the_target_on_als_factors(
    als_users: tuple[np.ndarray, np.ndarray, np.ndarray],
    als_index: tuple[VectorIndex, np.ndarray, np.ndarray],
) -> None:
    y, x, sample = als_users
    index, _, queries = als_index
    default = IndexSettings()
    others = np.delete(x, sample, axis=0)
    cal = others[np.random.default_rng(2).choice(len(others), 2000, replace=False)]
    try:
        choice = tune_ef_search(
            index,
            y,
            cal,
            default.recall_target,
            margin=default.recall_margin,
            ceiling=default.ef_search,
        )
        assert choice.met and choice.ef_search < default.ef_search
        # Held-out users (the fixture's sample, not calibrated on) still reach the target.
        assert recall_against_exact(index, y, queries, 20) >= default.recall_target
    finally:
        index.index.hnsw.efSearch = ALS_SETTINGS.ef_search


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="recall_target"):
        IndexSettings(recall_target=1.5)
    with pytest.raises(InvalidArgument, match="recall_margin"):
        IndexSettings(recall_margin=-0.1)
    with pytest.raises(InvalidArgument, match="must be <= 1"):
        IndexSettings(recall_target=1.0)  # plus the default margin
    with pytest.raises(InvalidArgument, match="ef_search"):
        IndexSettings(ef_search=0)
    with pytest.raises(InvalidArgument, match="hnsw_m"):
        IndexSettings(hnsw_m=1)


def test_small_catalogs_get_exact_search_and_say_why() -> None:
    tuned = build_tuned(gaussian(400, 8, 11), gaussian(200, 8, 12))
    assert tuned.index.kind == "flat" and tuned.recall_at_20 == 1.0
    assert "3,200 multiply-adds per query <= exact_max_work" in tuned.reason
    assert tuned.p99_ms is not None and tuned.p99_ms == tuned.exact_p99_ms
    counted = build_tuned(
        gaussian(400, 8, 11), gaussian(200, 8, 12), IndexSettings(exact_below=500)
    )
    assert counted.index.kind == "flat" and "400 items < exact_below 500" in counted.reason


def test_exact_search_is_chosen_by_the_work_per_query() -> None:
    settings = IndexSettings(exact_max_work=1500 * 16)
    assert settings.exact_reason(1500, 16) is not None
    assert settings.exact_reason(1501, 16) is None
    # Wider vectors cost more per item: the same count goes to HNSW.
    assert settings.exact_reason(1500, 17) is None
    assert VectorIndex.build(gaussian(1500, 16, 3), settings).kind == "flat"
    assert VectorIndex.build(gaussian(1500, 17, 3), settings).kind == "hnsw"
    # An explicit count wins over the work rule, both ways.
    assert IndexSettings(exact_below=10, exact_max_work=10**9).exact_reason(20, 4) is None
    assert IndexSettings(exact_below=30, exact_max_work=0).exact_reason(20, 4) is not None
    with pytest.raises(InvalidArgument, match="exact_max_work"):
        IndexSettings(exact_max_work=-1)


def test_hnsw_that_cannot_reach_the_target_falls_back_to_exact() -> None:
    # A degree-2 graph searched with a beam of 1 cannot find 20 neighbours of most queries.
    settings = IndexSettings(exact_below=100, hnsw_m=2, ef_construction=8, ef_search=1)
    tuned = build_tuned(gaussian(1500, 16, 13), gaussian(400, 16, 14), settings)
    assert tuned.index.kind == "flat" and tuned.recall_at_20 == 1.0
    assert "fell short" in tuned.reason and "M 2 " in tuned.reason
    # So far below the target that a graph of twice the degree is not tried.
    assert "M 4" not in tuned.reason


def test_hnsw_meeting_the_target_records_its_parameters_and_times() -> None:
    settings = IndexSettings(exact_below=100)
    tuned = build_tuned(gaussian(1500, 16, 15), gaussian(400, 16, 16), settings)
    assert tuned.index.kind == "hnsw" and tuned.hnsw_m == settings.hnsw_m
    assert tuned.recall_at_20 >= 0.98
    assert f"efSearch {tuned.index.ef_search}" in tuned.reason
    assert tuned.p99_ms is not None and tuned.exact_p99_ms is not None
