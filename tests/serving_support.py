"""Helpers for the serving tests: a tiny trained bundle, a running server, clients.

The bundle is trained once per test process by the real trainer on the synthetic storefront
(fixed seed) and copied per test that needs to alter it; servers listen on free loopback
ports and are always stopped by the test that started them.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx

from proto.fairshelf.v1 import (
    admin_pb2_grpc,
    events_pb2_grpc,
    pricing_pb2_grpc,
    recommendations_pb2_grpc,
    shoppers_pb2_grpc,
)
from serving.app import FairshelfServer
from serving.settings import load_settings

KEYS = {
    "storefront": "sk-test-storefront-000000001",
    "pricing": "sk-test-pricing-00000000000002",
    "admin": "sk-test-admin-0000000000000003",
}
TINY = {"users": 300, "items": 120, "days": 45, "seed": 7}
# Small and quick, but every part of a real bundle (ALS, two-tower ONNX, indices) is there.
TRAIN_CONFIG = {
    "als": {"factors_grid": [16], "iterations": 5},
    "two_tower": {"epochs": 1, "dim": 16},
}


def _tmp(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def tiny_store_dir() -> Path:
    """A generated tiny synthetic store (events.parquet, items.parquet, ...)."""
    from training.data.synthetic import generate_store

    root = _tmp("fairshelf-store-")
    generate_store(root, **TINY)
    return root


def train_into(bundles_dir: Path, seed: int = 7) -> Path:
    """Train a tiny bundle from :func:`tiny_store_dir` into ``bundles_dir`` with the real
    trainer (moves ``current``) and return the bundle directory."""
    from training.trainer import train

    store = tiny_store_dir()
    config = bundles_dir.parent / f"train-config-{seed}.json"
    config.write_text(json.dumps(TRAIN_CONFIG))
    return Path(
        train(
            store / "events.parquet",
            store / "items.parquet",
            bundles_dir,
            config_path=config,
            seed=seed,
            show_progress=False,
        )
    )


@functools.cache
def _trained_once() -> Path:
    root = _tmp("fairshelf-bundles-")
    train_into(root)
    return root


def tiny_bundles(dest: Path) -> Path:
    """A private copy of the once-trained tiny bundles directory (symlink kept)."""
    shutil.copytree(_trained_once(), dest, symlinks=True)
    return dest


@contextmanager
def running_server(bundles_dir: Path, db_path: Path, **overrides: Any) -> Iterator[FairshelfServer]:
    """A started server on free loopback ports; stopped on exit."""
    settings = load_settings(
        None,
        bundles_dir=bundles_dir,
        db_url=f"sqlite:///{db_path}",
        http_port=0,
        grpc_port=0,
        api_keys={key: role for role, key in KEYS.items()},
        reload_interval_seconds=overrides.pop("reload_interval_seconds", 0.2),
        log_format="console",
        **overrides,
    )
    server = FairshelfServer(settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Clients:
    """An HTTP client and gRPC stubs for one server."""

    def __init__(self, server: FairshelfServer) -> None:
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        self.recs = recommendations_pb2_grpc.RecommendationServiceStub(self.channel)
        self.pricing = pricing_pb2_grpc.PricingServiceStub(self.channel)
        self.events = events_pb2_grpc.EventServiceStub(self.channel)
        self.shoppers = shoppers_pb2_grpc.ShopperServiceStub(self.channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(self.channel)

    @staticmethod
    def md(role: str | None = "storefront") -> tuple[tuple[str, str], ...]:
        """gRPC metadata carrying the key of ``role`` (none for ``None``)."""
        return () if role is None else (("x-api-key", KEYS[role]),)

    @staticmethod
    def hdr(role: str | None = "storefront") -> dict[str, str]:
        """HTTP headers carrying the key of ``role``."""
        return {} if role is None else {"x-api-key": KEYS[role]}

    def close(self) -> None:
        """Close both clients."""
        self.http.close()
        self.channel.close()


def top_category(category: str) -> str:
    """The first level of a category path."""
    return category.split("/")[0]


def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def recommend(http: httpx.Client, user: str, k: int = 10) -> dict[str, Any]:
    """``POST /v1/recommend`` as the storefront; the JSON body of a 200."""
    resp = http.post("/v1/recommend", json={"user_id": user, "k": k}, headers=Clients.hdr())
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def grpc_error(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call a stub method expecting failure; return code name, message and field."""
    try:
        fn(*args, **kwargs)
    except grpc.RpcError as err:
        trailing = dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
        return {
            "code": err.code().name,  # type: ignore[attr-defined]
            "message": err.details(),  # type: ignore[attr-defined]
            "field": trailing.get("fairshelf-field"),
        }
    raise AssertionError("the call succeeded")


def http_error(resp: httpx.Response) -> dict[str, Any]:
    """The code, message and field of an HTTP error response."""
    body = resp.json()["error"]
    return {"code": body["code"], "message": body["message"], "field": body["field"]}
