"""serving.http_hot: the recommend route served ahead of FastAPI answers exactly as the FastAPI
route does, and hands everything it does not serve itself to FastAPI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from serving_support import KEYS, Clients

from serving.app import FairshelfServer
from serving.http_hot import HotRoutes


class CountingApp:
    """The FastAPI app, counting the requests that reach it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


class Caller:
    """Calls an ASGI app in-process (no redirects followed)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            # FastAPI re-raises an unexpected error after sending its 500 (for the server to
            # log); the answer is what is compared here.
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(go())

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


Pair = tuple[Caller, Caller, CountingApp]


@pytest.fixture(scope="module")
def pair(server: FairshelfServer) -> Pair:
    """Callers of the hot layer (over a counting FastAPI app) and of the FastAPI app alone."""
    assert isinstance(server.app, HotRoutes)
    fastapi_app = server.app.app
    counting = CountingApp(fastapi_app)
    return Caller(HotRoutes(counting, server.service)), Caller(fastapi_app), counting


def _user(server: FairshelfServer) -> str:
    return str(server.holder.require().bundle.user_ids[0])


def _headers(role: str | None = "storefront", **extra: str) -> dict[str, str]:
    out = {"x-request-id": "req-hot-1", **extra}
    if role is not None:
        out["x-api-key"] = KEYS[role]
    return out


def _same(a: httpx.Response, b: httpx.Response) -> None:
    assert a.status_code == b.status_code
    assert a.content == b.content
    assert dict(a.headers) == dict(b.headers)


# (body as bytes, headers, served by the hot layer itself)
CASES: dict[str, tuple[bytes, dict[str, str], bool]] = {
    "trending": (b'{"user_id": "never-seen", "k": 4}', _headers(), True),
    "charset": (
        b'{"user_id": "never-seen", "k": 3}',
        _headers(**{"content-type": "application/json; charset=utf-8"}),
        True,
    ),
    "k zero": (b'{"user_id": "u1", "k": 0}', _headers(), True),
    "k too large": (b'{"user_id": "u1", "k": 1001}', _headers(), True),
    "missing shopper": (b'{"k": 5}', _headers(), True),
    "no key": (b'{"user_id": "u1"}', _headers(role=None), True),
    "bad key": (b'{"user_id": "u1"}', {**_headers(), "x-api-key": "sk-nope"}, True),
    "malformed json": (b'{"user_id": ', _headers(), False),
    "not an object": (b"[1, 2]", _headers(), False),
    "wrong type": (b'{"user_id": "u1", "k": "many"}', _headers(), False),
    "wrong filter type": (
        b'{"user_id": "u1", "filters": {"min_price": "x"}}',
        _headers(),
        False,
    ),
    "nested too deep": (b"[" * 5000 + b"]" * 5000, _headers(), False),
    "bearer key": (
        b'{"user_id": "never-seen", "k": 2}',
        {"x-request-id": "req-hot-1", "authorization": f"Bearer {KEYS['storefront']}"},
        True,
    ),
    "large body": (
        b'{"user_id": "never-seen", "k": 2, "device": "' + b"w" * 70_000 + b'"}',
        _headers(),
        False,
    ),
    "text body": (
        b'{"user_id": "u1"}',
        _headers(**{"content-type": "text/plain"}),
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hot_route_answers_as_fastapi(pair: Pair, case: str) -> None:
    hot, plain, counting = pair
    body, headers, served_hot = CASES[case]
    headers = {"content-type": "application/json", **headers}
    before = counting.calls
    got = hot.post("/v1/recommend", content=body, headers=headers)
    want = plain.post("/v1/recommend", content=body, headers=headers)
    _same(got, want)
    assert (counting.calls == before) is served_hot


def test_streamed_body_goes_to_fastapi(pair: Pair) -> None:
    hot, plain, counting = pair
    body = b'{"user_id": "never-seen", "k": 3}'

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: sent chunked
        yield body[:10]
        yield body[10:]

    headers = {"content-type": "application/json", **_headers()}
    before = counting.calls
    got = hot.post("/v1/recommend", content=chunks(), headers=headers)
    assert counting.calls == before + 1
    _same(got, plain.post("/v1/recommend", content=body, headers=headers))


def test_unexpected_errors_answer_as_fastapi(
    server: FairshelfServer, pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    hot, plain, counting = pair

    def broken(*_args: Any) -> Any:
        raise RuntimeError("recommender fault")

    monkeypatch.setattr(server.service, "recommend", broken)
    body = {"user_id": "never-seen", "k": 3}
    before = counting.calls
    got = hot.post("/v1/recommend", json=body, headers=_headers())
    assert counting.calls == before
    want = plain.post("/v1/recommend", json=body, headers=_headers())
    assert got.status_code == 500 and got.json()["error"]["code"] == "INTERNAL"
    _same(got, want)


def test_known_shopper_and_prices_match(server: FairshelfServer, pair: Pair) -> None:
    hot, plain, counting = pair
    body = {"user_id": _user(server), "k": 6, "include_prices": True, "device": "ios"}
    before = counting.calls
    got = hot.post("/v1/recommend", json=body, headers=_headers())
    want = plain.post("/v1/recommend", json=body, headers=_headers())
    assert counting.calls == before
    assert got.status_code == 200 and len(got.json()["items"]) == 6
    # Quote ids differ between the two calls; everything else is the same.
    for a, b in zip(got.json()["items"], want.json()["items"], strict=True):
        assert a["quote"].pop("quote_id") != b["quote"].pop("quote_id")
        assert a == b


def test_other_routes_pass_through(pair: Pair) -> None:
    hot, plain, counting = pair
    before = counting.calls
    for method, path in (("GET", "/v1/recommend"), ("POST", "/v1/recommend/"), ("GET", "/healthz")):
        _same(
            hot.request(method, path, headers=_headers()),
            plain.request(method, path, headers=_headers()),
        )
    assert counting.calls == before + 3


def test_real_server_serves_recommend_through_the_hot_layer(
    server: FairshelfServer, clients: Clients
) -> None:
    # The running server's ASGI app is the hot layer over FastAPI, not FastAPI alone.
    assert isinstance(server.app, HotRoutes) and server.app.service is server.service
    resp = clients.http.post(
        "/v1/recommend", json={"user_id": _user(server), "k": 5}, headers=_headers()
    )
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "req-hot-1"
    body = resp.json()
    assert len(body["items"]) == 5 and body["request_id"] == "req-hot-1"
    bad = clients.http.post("/v1/recommend", content=b"{", headers=_headers())
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "body"
