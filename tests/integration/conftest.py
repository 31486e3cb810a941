"""Fixtures shared by the integration tests that talk to a running fairshelf server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serving_support import Clients, running_server, tiny_bundles

from serving.app import FairshelfServer


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FairshelfServer]:
    """A real server (gRPC + HTTP on free loopback ports) over a tiny trained bundle and its own
    SQLite file, one per test module, stopped when the module's tests are done."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with running_server(tiny_bundles(root / "bundles"), root / "db.sqlite") as srv:
        yield srv


@pytest.fixture(scope="module")
def clients(server: FairshelfServer) -> Iterator[Clients]:
    """HTTP and gRPC clients of the module's server."""
    c = Clients(server)
    yield c
    c.close()
