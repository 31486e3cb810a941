"""Shared fixtures: tiny real datasets from the synthetic storefront with fixed seeds.

``tiny_store`` is generated once per test session into a temporary directory; tests must treat
its files and DataFrames as read-only (copy before mutating).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data.synthetic import SyntheticStore, generate_and_load

# 300 users x 120 items x 45 days gives ~26k events in well under a second.
TINY_USERS, TINY_ITEMS, TINY_DAYS, TINY_SEED = 300, 120, 45, 7


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStore:
    """A small synthetic store (files + loaded DataFrames + ground truth), shared read-only."""
    root: Path = tmp_path_factory.mktemp("tiny_store")
    return generate_and_load(
        root, users=TINY_USERS, items=TINY_ITEMS, days=TINY_DAYS, seed=TINY_SEED
    )
