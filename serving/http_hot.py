"""``POST /v1/recommend`` served ahead of FastAPI's request machinery.

Recommend is the one call a storefront makes on every page, and FastAPI's per-request work
(six middleware layers, dependency solving, body-field handling) is a large share of it: on
the serving benchmark's host an endpoint that does nothing cost 0.29 ms of CPU per call
through a FastAPI route and 0.10 ms as a plain ASGI handler, next to about 0.8 ms for a whole
recommendation. So this layer answers a well-formed recommend request itself:

* the body is decoded with :func:`json.loads` and validated into the same
  :class:`~serving.api_models.RecommendIn` FastAPI would build, then passed to the same
  service call as the FastAPI route;
* the answer is the same as the route's ``JSONResponse`` (same JSON, same headers, sent as
  the two ASGI messages that response would send), and errors raised by the service are
  rendered by the same function as the FastAPI exception handlers.

One difference is in logging only: an unexpected error is logged once here, where FastAPI's
outer middleware would log it a second time after sending the same 500 answer.

Everything else goes to the FastAPI application unchanged, with the body replayed when it was
already read: other paths and methods, a content type other than ``application/json``, a
missing, chunked or large body, undecodable JSON and a body of the wrong shape. Those answers,
malformed-body errors included, therefore come from the one place that defines them, and the
route stays declared in FastAPI for the OpenAPI document.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fairshelf.errors import FairshelfError
from serving.api_models import RecommendIn
from serving.auth import api_key_from_headers
from serving.errors import REQUEST_ID_METADATA_KEY
from serving.http_responses import error_response, json_bytes, json_messages
from serving.logging import bind_request, get_logger
from serving.service import CallContext, FairshelfService

log = get_logger("fairshelf.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RECOMMEND_PATH = "/v1/recommend"
# Recommend bodies are a few hundred bytes; anything larger is left to FastAPI.
MAX_HOT_BODY = 64 * 1024
_WANTED = frozenset(
    {b"content-type", b"content-length", b"x-api-key", b"authorization", b"x-request-id"}
)


def _headers(scope: Scope) -> dict[str, str]:
    """The headers this layer reads, lower-case names; the first of repeated ones (as
    Starlette's ``Headers.get``)."""
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.lower()
        if key in _WANTED:
            out.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    return out


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the already-read body once, then defers to the client's."""
    pending = True

    async def again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class HotRoutes:
    """ASGI layer in front of the FastAPI app that serves well-formed recommend calls.

    Parameters
    ----------
    app:
        The FastAPI application (:func:`serving.http_app.build_http_app`), which serves every
        other request.
    service:
        The service object both answer with.
    """

    def __init__(self, app: ASGIApp, service: FairshelfService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != RECOMMEND_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        length = headers.get("content-length", "")
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json" or not length.isdigit() or int(length) > MAX_HOT_BODY:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        try:
            body = RecommendIn.model_validate(json.loads(raw))
        except Exception:
            # Whatever stops the decode (bad JSON or UTF-8, a wrong shape, nesting too deep for
            # the parser's recursion): FastAPI meets the same failure and words the answer.
            await self.app(scope, _replay(raw, receive), send)
            return
        request_id = bind_request(headers.get(REQUEST_ID_METADATA_KEY))
        call = CallContext(api_key_from_headers(headers), request_id, "http")
        try:
            result = self.service.recommend(call, body)
            raw = json_bytes(result.to_json())
        except Exception as exc:
            if not isinstance(exc, FairshelfError):
                # As the FastAPI app's handler of unexpected errors does.
                log.exception("unhandled_error", path=RECOMMEND_PATH)
            await error_response(exc, request_id)(scope, receive, send)
            return
        start, reply = json_messages(raw, request_id)
        await send(start)
        await send(reply)
