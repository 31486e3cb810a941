"""Tests of pricing.switchback: slot assignment and the analysis."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from fairshelf.errors import InvalidArgument
from pricing.policies.elasticity_optimal import ElasticityOptimalPolicy
from pricing.policies.static import StaticPolicy
from pricing.switchback import Switchback, analyze_switchback


def test_assignment_is_by_slot_balanced_and_seeded() -> None:
    sb = Switchback([StaticPolicy(), ElasticityOptimalPolicy()], seed=3, epochs_per_slot=4)
    names = [sb.policy_for(e).name for e in range(0, 400)]
    # Constant within a slot.
    for slot in range(100):
        assert len(set(names[slot * 4 : slot * 4 + 4])) == 1
    # Exactly balanced per block of two slots.
    for block in range(50):
        arms = {sb.arm(2 * block), sb.arm(2 * block + 1)}
        assert arms == {0, 1}
    assert Counter(names) == {"static": 200, "elasticity_optimal": 200}
    same = Switchback([StaticPolicy(), ElasticityOptimalPolicy()], seed=3, epochs_per_slot=4)
    other = Switchback([StaticPolicy(), ElasticityOptimalPolicy()], seed=4, epochs_per_slot=4)
    assert [same.arm(s) for s in range(100)] == [sb.arm(s) for s in range(100)]
    assert [other.arm(s) for s in range(100)] != [sb.arm(s) for s in range(100)]


def test_switchback_refuses_bad_setups() -> None:
    with pytest.raises(InvalidArgument):
        Switchback([StaticPolicy()], seed=1)
    with pytest.raises(InvalidArgument):
        Switchback([StaticPolicy(), StaticPolicy()], seed=1)


def test_analysis_finds_a_real_difference_and_not_a_fake_one() -> None:
    rng = np.random.default_rng(0)
    sb = Switchback([StaticPolicy(), ElasticityOptimalPolicy()], seed=9, epochs_per_slot=2)
    rows = []
    for epoch in range(400):
        name = sb.policy_for(epoch).name
        lift = 5.0 if name == "elasticity_optimal" else 0.0
        rows.append((epoch, name, 100 + lift + rng.normal(0, 3), 30 + rng.normal(0, 3)))
    df = pd.DataFrame(rows, columns=["epoch", "policy", "revenue", "margin"])
    out = analyze_switchback(df, epochs_per_slot=2, control="static").set_index("policy")
    opt = out.loc["elasticity_optimal"].to_dict()
    # Revenue per slot is two epochs: a true lift of 10 per slot.
    assert opt["revenue_diff_ci_low"] < 10 < opt["revenue_diff_ci_high"]
    assert opt["revenue_diff_ci_low"] > 0
    assert opt["margin_diff_ci_low"] < 0 < opt["margin_diff_ci_high"]
    assert out["n_slots"].to_dict()["static"] == 100
    washed = analyze_switchback(df, epochs_per_slot=2, washout_epochs=1, control="static")
    assert washed.set_index("policy")["revenue_per_slot"].to_dict()["static"] < 110
