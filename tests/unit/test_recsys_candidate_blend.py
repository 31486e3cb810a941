"""The online blend equals the evaluated one (recsys.candidate_blend vs recsys.hybrid)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.candidate_blend import blend_candidates, variant_params
from recsys.hybrid import HybridParams, blend_scores


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    rw=st.floats(0.0, 1.0),
    w_tt=st.floats(0.0, 1.0),
    w_trend=st.floats(0.0, 1.0),
)
def test_full_catalog_blend_matches_blend_scores(
    seed: int, rw: float, w_tt: float, w_trend: float
) -> None:
    rng = np.random.default_rng(seed)
    n = 50
    repeat = np.where(rng.uniform(size=n) < 0.2, rng.uniform(0.1, 2.0, n), 0.0)
    disc = {
        "als": rng.normal(size=n),
        "two_tower": rng.normal(size=n),
        "trend": rng.exponential(size=n),
    }
    params = HybridParams(
        repeat_weight=rw, discovery_weights={"als": 1.0, "two_tower": w_tt, "trend": w_trend}
    )
    want = blend_scores(repeat, disc, params)
    scales = {k: float(np.abs(v).max()) for k, v in disc.items()}
    got = blend_candidates(repeat, float(repeat.max()), disc, scales, params)
    np.testing.assert_allclose(got.total, want, atol=1e-5)
    np.testing.assert_allclose(got.repeat + got.personal + got.trend, got.total, atol=1e-12)
    # On a subset of candidates with the catalog's scales, scores are the catalog's scores.
    idx = rng.choice(n, 10, replace=False)
    sub = blend_candidates(
        repeat[idx], float(repeat.max()), {k: v[idx] for k, v in disc.items()}, scales, params
    )
    np.testing.assert_allclose(sub.total, want[idx], atol=1e-5)


def test_variant_params() -> None:
    bundle = HybridParams(repeat_weight=0.3, discovery_weights={"als": 0.7, "trend": 0.3})
    every = {"als", "two_tower", "trend"}
    assert variant_params("default", bundle, every).discovery_weights == {"als": 0.7, "trend": 0.3}
    assert variant_params("weird", bundle, every) == variant_params("default", bundle, every)
    tt = variant_params("two_tower", bundle, every)
    assert tt.discovery_weights == {"two_tower": 1.0} and tt.repeat_weight == 0.3
    # Without a two-tower model the variant falls back to the bundle's blend.
    assert variant_params("two_tower", bundle, {"als", "trend"}).discovery_weights == {
        "als": 0.7,
        "trend": 0.3,
    }
    only_trend = HybridParams(discovery_weights={"trend": 1.0})
    assert variant_params("default", only_trend, every).discovery_weights == {
        "als": 1.0,
        "trend": 1.0,
    }
