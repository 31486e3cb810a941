"""Unit tests of pricing.fairness.steering: the stratified test against independent
computations, and the decision rule on small hand-made logs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pricing.fairness.quotes import Quote
from pricing.fairness.shopper import ShopperGroup
from pricing.fairness.steering import (
    EXISTING,
    HOPPING_RULE,
    NEW,
    OTHER,
    STEERING_RULE,
    SteeringInputs,
    steering_test,
)

LOYAL = ShopperGroup("long", "frequent", "ios")
NEWBIE = ShopperGroup("new", "none", "web")
REGULAR = ShopperGroup("regular", "occasional", "web")


def _quote(n: int, item: str, epoch: int, region: str, price: float, group: ShopperGroup,
           ref: str = "", day: str = "2026-03-02") -> Quote:  # fmt: skip
    return Quote(
        f"q{n:06d}", item, epoch, f'["{region}",[],[]]', f"{day}T10:00:00+00:00", price, price,
        price, 0.0, (), "p", "1", (), "global", "0", (), group, shopper_ref=ref,
    )  # fmt: skip


def _one_day(stratum, price, labels, shopper):  # type: ignore[no-untyped-def]
    day = np.zeros(len(price), dtype=np.int64)
    ((_, z, p, gap, rel, n, _),) = steering_test(stratum, day, price, labels, shopper)
    return z, p, gap, rel, n


def test_variance_matches_label_permutations_of_one_stratum() -> None:
    # Independent computation: the spread of D over 20,000 label shuffles.
    rng = np.random.default_rng(3)
    price = rng.choice([10.0, 11.0, 12.5], size=40)
    labels = np.array([EXISTING] * 15 + [NEW] * 25)
    z, _, gap, _, _ = _one_day(np.zeros(40, dtype=np.int64), price, labels, np.arange(40))
    perms = np.array([rng.permutation(labels) for _ in range(20_000)])
    d = (np.where(perms == EXISTING, price, 0).sum(1) / 15) - (
        np.where(perms == NEW, price, 0).sum(1) / 25
    )
    assert abs(d.mean()) < 0.01
    assert gap / z == pytest.approx(d.std(), rel=0.1)


def test_combined_z_is_the_weighted_sum_over_strata_with_shopper_variance() -> None:
    rng = np.random.default_rng(5)
    stratum = np.repeat(np.arange(3), 20)
    price = rng.normal(20, 2, size=60).round(2)
    labels = np.tile([EXISTING] * 8 + [NEW] * 10 + [OTHER] * 2, 3)
    shopper = np.tile(np.arange(20), 3)  # each shopper asks for all three items
    z, p, _, _, n = _one_day(stratum, price, labels, shopper)
    w = 8 * 10 / 18
    num = 0.0
    per_shopper = np.zeros(20)
    for s in range(3):
        idx = np.flatnonzero((stratum == s) & (labels != OTHER))
        x, lab = price[idx], labels[idx]
        num += w * (x[lab == EXISTING].mean() - x[lab == NEW].mean())
        for i, xi, li in zip(idx, x, lab, strict=True):
            a = w / 8 if li == EXISTING else -w / 10
            per_shopper[shopper[i]] += a * (xi - x.mean()) * math.sqrt(18 / 17)
    k = int((per_shopper != 0).sum())
    assert n == 3 and k == 18
    assert z == pytest.approx(num / math.sqrt((per_shopper**2).sum() * k / (k - 1)))
    assert p == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))


def test_null_z_is_standard_normal_when_shoppers_keep_their_market() -> None:
    rng = np.random.default_rng(11)
    clustered, naive = [], []
    for _ in range(300):
        # 60 shoppers, each in one market, each asking for the same 8 items.
        market = rng.choice([9.0, 10.0, 11.0], size=60)
        group = rng.choice([EXISTING, NEW], size=60)
        shopper = np.repeat(np.arange(60), 8)
        stratum = np.tile(np.arange(8), 60)
        price, labels = market[shopper], group[shopper]
        clustered.append(_one_day(stratum, price, labels, shopper)[0])
        naive.append(_one_day(stratum, price, labels, np.arange(480))[0])
    assert abs(np.mean(clustered)) < 0.2
    assert np.std(clustered) == pytest.approx(1.0, abs=0.15)
    # Counting each quote as its own shopper would overstate the evidence about 8-fold.
    assert np.std(naive) > 2.0


def test_loyal_shoppers_in_the_pricier_region_are_a_finding() -> None:
    inputs = SteeringInputs()
    n = 0
    for item in ("a", "b", "c"):
        for k in range(30):
            n += 1
            loyal = k % 2 == 0
            region = "CN-31" if (loyal and k % 10 != 0) or (not loyal and k % 10 == 1) else "CN"
            price = 11.0 if region == "CN-31" else 10.0
            inputs.observe(_quote(n, item, 7, region, price, LOYAL if loyal else NEWBIE))
    summary = inputs.audit()
    assert [f.rule for f in summary.steering] == [STEERING_RULE]
    assert "existing customers were quoted" in summary.steering[0].message
    assert summary.days[0].relative_gap > 0.05
    assert len(summary.steering[0].examples) == 2


def test_same_mix_in_every_region_is_no_finding() -> None:
    inputs = SteeringInputs()
    n = 0
    for item in ("a", "b"):
        for k in range(40):
            n += 1
            region = "CN-31" if k % 4 < 2 else "CN"
            group = LOYAL if k % 2 == 0 else NEWBIE
            inputs.observe(_quote(n, item, 1, region, 11.0 if region == "CN-31" else 10.0, group))
    summary = inputs.audit()
    assert summary.steering == []
    assert summary.days[0].z == pytest.approx(0.0, abs=1e-9)


def test_one_price_per_group_is_not_tested() -> None:
    inputs = SteeringInputs()
    for k in range(20):
        inputs.observe(_quote(k, "a", 1, "CN", 10.0, LOYAL if k % 2 else NEWBIE))
    summary = inputs.audit()
    assert summary.days == [] and summary.findings == []


def test_a_shopper_under_two_regions_in_a_day_is_hopping() -> None:
    inputs = SteeringInputs()
    inputs.observe(_quote(1, "a", 1, "CN", 10.0, LOYAL, ref="r1"))
    inputs.observe(_quote(2, "a", 2, "CN-31", 11.0, LOYAL, ref="r1"))
    inputs.observe(_quote(3, "a", 1, "CN", 10.0, NEWBIE, ref="r2"))
    inputs.observe(_quote(4, "a", 1, "CN-31", 11.0, NEWBIE, ref="r2", day="2026-03-03"))
    inputs.observe(_quote(5, "a", 1, "CN-31", 11.0, REGULAR, ref=""))
    inputs.observe(_quote(6, "a", 1, "CN", 10.0, REGULAR, ref=""))
    hops = inputs.audit().hopping
    assert [(f.rule, f.key) for f in hops] == [(HOPPING_RULE, "2026-03-02/r1")]
    assert "CN, CN-31" in hops[0].message
    assert hops[0].examples == ("q000001", "q000002")
