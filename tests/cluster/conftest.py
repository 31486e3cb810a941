"""The cluster suite's fixtures: one topology for the whole session, stopped even on failure.

The suite needs haproxy, prometheus and PostgreSQL from Debian (`.ci/cluster-deps.sh`); without
them it is skipped, or fails when ``FAIRSHELF_TESTS_REAL_ONLY=1`` (set by `.ci/run`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cluster_topology import Cluster, Shop
from debian_tools import binary, postgres_bin
from serving_support import KEYS, tiny_bundles

from recsys.bundle import load_bundle


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    for name in ("haproxy", "prometheus"):
        binary(name)
    postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="fairshelf-cluster-"))
    bundles = tiny_bundles(root / "bundles")
    topology = Cluster(root, bundles)
    started = time.monotonic()
    keep = True
    try:
        topology.start()
        print(f"\ncluster up in {time.monotonic() - started:.1f} s ({root})")
        yield topology
        keep = request.session.testsfailed > 0
    finally:
        try:
            topology.stop()
        finally:
            # The logs stay after a failure; a clean run leaves nothing behind.
            if keep:
                print(f"cluster logs kept in {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def shop(cluster: Cluster) -> Shop:
    bundle = load_bundle(cluster.bundles / "current")
    users = [str(u) for u in bundle.user_ids[:60]]
    items = [str(i) for i in bundle.item_ids[:40]]
    opted_out = users[:3]
    with httpx.Client(base_url=cluster.http_url, timeout=10) as http:
        for user in opted_out:
            resp = http.put(
                f"/v1/shoppers/{user}/personalization",
                json={"enabled": False},
                headers={"x-api-key": KEYS["storefront"]},
            )
            assert resp.status_code == 200, resp.text
    return Shop(users, items, opted_out, bundle.manifest.bundle_id)
