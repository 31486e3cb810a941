"""Shared fixtures: tiny real datasets from the synthetic storefront with fixed seeds.

``tiny_store`` is generated once per test session into a temporary directory; tests must treat
its files and DataFrames as read-only (copy before mutating).

Some tests need a component from outside the project (a PostgreSQL URL, Debian's haproxy,
prometheus, chromium) and skip without it on a developer's machine. ``.ci/run`` provides all of
them and sets ``FAIRSHELF_TESTS_REAL_ONLY=1``: there a skip of any kind is reported as a
failure, so a missing component can never pass as a skipped test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("FAIRSHELF_TESTS_REAL_ONLY") == "1":
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under FAIRSHELF_TESTS_REAL_ONLY=1 (CI runs it for real): {reason}"
        )
