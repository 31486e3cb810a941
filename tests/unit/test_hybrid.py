"""recsys.hybrid: the buy-again + discovery blend and top-k filtering."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fairshelf.errors import InvalidArgument
from recsys.hybrid import HybridParams, blend_scores, repeat_score_from_ages
from training.ranking import top_k_rows

finite = st.floats(-10, 10, allow_nan=False, width=32)
# Scaled by up to 100x down, a subnormal float32 underflows to 0: the part then vanishes from
# one blend and not from the other, which says nothing about the blend.
normal = st.floats(-10, 10, allow_nan=False, allow_subnormal=False, width=32)


def test_weight_extremes_rank_by_one_part() -> None:
    repeat = np.array([0.0, 3.0, 1.0, 0.0])
    disc = {"als": np.array([0.9, -0.2, 0.1, 0.5])}
    only_repeat = blend_scores(repeat, disc, HybridParams(repeat_weight=1.0))
    only_disc = blend_scores(repeat, disc, HybridParams(repeat_weight=0.0))
    assert top_k_rows(only_repeat[None], 2)[0].tolist() == [1, 2]
    assert top_k_rows(only_disc[None], 2)[0].tolist() == [0, 3]
    mixed = blend_scores(repeat, disc, HybridParams(repeat_weight=0.7))
    assert top_k_rows(mixed[None], 1)[0].tolist() == [1]  # a strong repeat beats a discovery


def test_sources_are_weighted_and_missing_ones_renormalised() -> None:
    a = np.array([[1.0, 0.0, 0.0]])
    b = np.array([[0.0, 0.0, 1.0]])
    p = HybridParams(repeat_weight=0.0, discovery_weights={"als": 0.3, "two_tower": 0.7})
    out = blend_scores(np.zeros((1, 3)), {"als": a, "two_tower": b}, p)
    assert np.allclose(out, [[0.3, 0.0, 0.7]])
    only_a = blend_scores(np.zeros((1, 3)), {"als": a}, p)
    assert np.allclose(only_a, [[1.0, 0.0, 0.0]])
    with pytest.raises(InvalidArgument):
        blend_scores(np.zeros(3), {"als": np.zeros(4)}, p)
    with pytest.raises(InvalidArgument):
        blend_scores(np.zeros(3), {}, p)


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float32, 12, elements=normal),
    arrays(np.float32, 12, elements=st.floats(0, 5, allow_subnormal=False, width=32)),
    st.floats(0.01, 100),
    st.floats(0.0, 1.0),
)
def test_blend_ignores_the_scale_of_each_part(
    disc: np.ndarray, repeat: np.ndarray, scale: float, w: float
) -> None:
    p = HybridParams(repeat_weight=w)
    a = blend_scores(repeat, {"als": disc}, p)
    b = blend_scores(repeat * scale, {"als": disc * scale}, p)
    assert np.allclose(a, b, atol=1e-5)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, 20, elements=finite), st.integers(1, 25))
def test_top_k_never_returns_excluded_and_is_sorted(scores: np.ndarray, k: int) -> None:
    allowed_items = np.arange(20) % 3 != 0
    got = top_k_rows(scores[None].copy(), k, allowed_items)[0]
    kk = min(k, 20)
    assert len(got) == kk
    allowed = got[: min(kk, int(allowed_items.sum()))]
    assert allowed_items[allowed].all()
    assert np.all(np.diff(scores[allowed]) <= 0)


def test_repeat_score_halves_per_half_life() -> None:
    got = repeat_score_from_ages(np.array([0.0, 30.0, 60.0, -5.0]), 30.0)
    assert np.allclose(got, [1.0, 0.5, 0.25, 1.0])


def test_rows_of_tiny_scores_are_scaled_like_any_other() -> None:
    # 1 / 1e-40 does not fit a float32: such rows are scaled in float64, not turned into inf.
    tiny = np.array([[1e-40, -2e-40, 0.0], [1.0, 2.0, 4.0]], dtype=np.float32)
    out = blend_scores(tiny, {"als": tiny}, HybridParams(repeat_weight=0.5))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [[0.5, -1.0, 0.0], [0.25, 0.5, 1.0]], rtol=1e-3)


def test_a_row_shared_by_every_shopper_blends_like_its_copies() -> None:
    rng = np.random.default_rng(5)
    trend = rng.random(30).astype(np.float32)
    als = rng.normal(size=(4, 30)).astype(np.float32)
    shared = np.broadcast_to(trend, (4, 30))
    p = HybridParams(repeat_weight=0.3, discovery_weights={"als": 0.6, "trend": 0.4})
    for repeat in (np.zeros((4, 30), dtype=np.float32), shared):
        got = blend_scores(repeat, {"als": als, "trend": shared}, p)
        want = blend_scores(np.array(repeat), {"als": als, "trend": np.tile(trend, (4, 1))}, p)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert got.flags.writeable
