"""Deterministic variant assignment (recsys.experiments)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from recsys.config import ExperimentConfig
from recsys.experiments import VariantAssigner, bucket


@given(st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != ""))
def test_assignment_is_stable_and_valid(user_id: str) -> None:
    cfg = ExperimentConfig(split={"als": 0.5, "two_tower": 0.5})
    a, b = VariantAssigner(cfg), VariantAssigner(cfg)
    assert a.assign(user_id) == b.assign(user_id) in {"als", "two_tower"}


def test_split_shares_are_respected() -> None:
    cfg = ExperimentConfig(split={"two_tower": 0.2, "als": 0.8})
    assigner = VariantAssigner(cfg)
    n = 20_000
    share = sum(assigner.assign(f"user-{i}") == "two_tower" for i in range(n)) / n
    assert abs(share - 0.2) < 0.015


def test_zero_share_variant_never_assigned() -> None:
    assigner = VariantAssigner(ExperimentConfig(split={"a": 0.0, "b": 1.0, "c": 0.0}))
    assert {assigner.assign(f"u{i}") for i in range(2000)} == {"b"}


def test_salt_reshuffles_independently() -> None:
    one = VariantAssigner(ExperimentConfig(salt="s1", split={"a": 0.5, "b": 0.5}))
    two = VariantAssigner(ExperimentConfig(salt="s2", split={"a": 0.5, "b": 0.5}))
    same = sum(one.assign(f"u{i}") == two.assign(f"u{i}") for i in range(4000)) / 4000
    assert 0.45 < same < 0.55


def test_bucket_separates_fields() -> None:
    assert bucket("c", "ab", "x") != bucket("c", "a", "bx")


@pytest.mark.parametrize("split", [{}, {"a": 0.7}, {"a": -0.5, "b": 1.5}])
def test_bad_split_rejected(split: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        ExperimentConfig(split=split)
